/**
 * Credential leases: who one upstream attempt runs as. The pool hands out its identities (with
 * failover, breaker and cooldowns); client mode wraps the caller's own token or cookie. Both give
 * the turn opener the same surface: credentials, `refresh()` after an authentication failure, and
 * `release(outcome)` exactly once.
 */
import { GatewayError, UpstreamError } from '../errors.js'
import type { Outcome } from '../health.js'
import { credentialsOf, type IdentityPool, type Lease as PoolLease } from '../pool.js'
import { untilAborted } from '../grace.js'
import type { RefreshResult, TokenService } from '../tokens.js'
import type { Credentials } from '../upstream/protocol.js'

/** Who a request runs as: the gateway's pool (server mode) or the caller's own credentials. */
export type Caller = { kind: 'pool' } | { kind: 'client'; token: string | undefined; cookie: string | undefined }

export interface CredentialLease {
  /** Pool identity id, or undefined for a client-mode caller. */
  readonly identityId: string | undefined
  /** Masked label for logs. */
  readonly label: string
  readonly proxyUrl: string | undefined
  cred: Credentials
  /** Make sure a token is there before the first call (fetches a missing or expiring one). */
  prepare: (signal: AbortSignal) => Promise<void>
  /** After an authentication failure: get a new token, or throw what should be reported. */
  refresh: (cause: UpstreamError, signal: AbortSignal) => Promise<void>
  /** Give the lease back with what the attempt says about the identity. Idempotent. */
  release: (outcome: Outcome) => void
}

/** Where leases come from: `acquire` throws the error to report when nothing can serve. */
export interface LeaseSource {
  /** Whether a failed attempt may move on to another lease. */
  readonly failover: boolean
  acquire: (tried: ReadonlySet<string>, signal: AbortSignal) => Promise<CredentialLease>
  /** The error to report when failover ran out (`last` is the last attempt's failure). */
  exhausted: (last: UpstreamError) => UpstreamError
}

/** What an upstream failure says about the identity that met it. */
export function outcomeOf (err: unknown): Outcome {
  if (!(err instanceof UpstreamError) || err.requestCaused) return { kind: 'neutral' }
  switch (err.kind) {
    case 'rate_limited': return { kind: 'rate_limited', error: err.message, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) }
    case 'challenge': return { kind: 'challenge', error: err.message }
    case 'auth_failed': return { kind: 'auth_refused', error: err.message }
    case 'bad_request':
    case 'no_identity':
    case 'limit':
    case 'overloaded':
    // An empty answer is the model's or the site's doing, not the account's (it may still fail over).
    case 'empty_answer':
      return { kind: 'neutral' }
    default: return { kind: 'failure', error: err.message }
  }
}

class PoolCredentialLease implements CredentialLease {
  cred: Credentials
  private released = false
  /** A token fetch in this attempt met a challenge or a rate limit: the token service recorded it already. */
  private recorded = false

  constructor (private readonly pool: IdentityPool, private readonly tokens: TokenService, private readonly lease: PoolLease) {
    this.cred = credentialsOf(lease.identity)
  }

  get identityId (): string { return this.lease.identity.id }
  get label (): string { return this.lease.identity.label }
  get proxyUrl (): string | undefined { return this.lease.identity.proxyUrl }

  /** Fetch this identity's token (shared with any fetch in progress), but never past the request's signal. */
  private async fetchToken (signal: AbortSignal): Promise<RefreshResult> {
    const r = await untilAborted(this.tokens.refresh(this.lease.identity), signal)
    if (!r.success && (r.cause?.kind === 'challenge' || r.cause?.kind === 'rate_limited')) this.recorded = true
    return r
  }

  async prepare (signal: AbortSignal): Promise<void> {
    const i = this.lease.identity
    if (!this.pool.needsTokenNow(i)) return
    const r = await this.fetchToken(signal)
    if (!r.success) throw r.cause ?? new UpstreamError('auth_failed', `No valid token for ${i.label}: ${r.error}`)
    this.cred = credentialsOf(i)
  }

  async refresh (cause: UpstreamError, signal: AbortSignal): Promise<void> {
    const i = this.lease.identity
    if (!i.canRefresh) throw cause
    // Refreshed since this attempt started (by another request, or another replica): use that token.
    if (i.token !== undefined && i.token !== this.cred.token && !this.pool.needsTokenNow(i)) {
      this.cred = credentialsOf(i)
      return
    }
    const r = await this.fetchToken(signal)
    // A refresh that met a challenge, a rate limit or an outage says more than "unauthorized".
    if (!r.success) throw r.cause && r.cause.kind !== 'auth_failed' ? r.cause : cause
    this.cred = credentialsOf(i)
  }

  release (outcome: Outcome): void {
    if (this.released) return
    this.released = true
    // What a token fetch met was recorded once already; do not count it twice.
    this.pool.release(this.lease, this.recorded && outcome.kind !== 'success' ? { kind: 'neutral' } : outcome)
  }
}

/** The gateway's own identities, with failover. */
export class PoolLeaseSource implements LeaseSource {
  readonly failover = true

  constructor (private readonly pool: IdentityPool, private readonly tokens: TokenService) {}

  async acquire (tried: ReadonlySet<string>): Promise<CredentialLease> {
    // No waiting for the start-up token fetch of every identity: `prepare` fetches this one's if needed.
    return new PoolCredentialLease(this.pool, this.tokens, await this.pool.acquireShared(tried))
  }

  exhausted (last: UpstreamError): UpstreamError {
    // Out of retries. If something could still serve right now, a quick retry will do; otherwise
    // the answer follows whichever identity comes back first.
    if (last.kind !== 'rate_limited' && last.kind !== 'challenge') return last
    if (this.pool.identities.some((i) => this.pool.available(i))) {
      return last.kind === 'rate_limited' ? new UpstreamError('rate_limited', `${last.message}; other accounts are available, retry shortly`, { retryAfterMs: 1000 }) : last
    }
    return this.pool.exhausted()
  }
}

/** Client mode: the caller's own credential refused upstream is theirs to fix (401, DECISIONS). */
function callerRefused (cause: UpstreamError): GatewayError {
  return new GatewayError(`The upstream refused your Qwen token or cookie: ${cause.message}`, {
    status: 401, type: 'authentication_error', code: 'upstream_auth_failed', headers: { 'x-should-retry': 'false' }, cause,
  })
}

class ClientCredentialLease implements CredentialLease {
  readonly identityId = undefined
  readonly label = 'client'
  readonly proxyUrl = undefined
  cred: Credentials

  constructor (private readonly tokens: TokenService, token: string | undefined, private readonly cookie: string | undefined) {
    this.cred = { token, cookie }
  }

  async prepare (signal: AbortSignal): Promise<void> {
    if (this.cred.token || !this.cookie) return
    try {
      this.cred = { token: await this.tokens.clientToken(this.cookie, { signal }), cookie: this.cookie }
    } catch (err) {
      if (err instanceof UpstreamError && err.kind === 'auth_failed') throw callerRefused(err)
      throw err
    }
  }

  async refresh (cause: UpstreamError, signal: AbortSignal): Promise<void> {
    if (!this.cookie) throw callerRefused(cause)
    try {
      this.cred = { token: await this.tokens.clientToken(this.cookie, { force: true, signal }), cookie: this.cookie }
    } catch (err) {
      // Only a refusal is the caller's to fix; an outage or a challenge while re-fetching is reported as such.
      if (err instanceof UpstreamError && err.kind === 'auth_failed') throw callerRefused(cause)
      throw err
    }
  }

  release (): void {}
}

/** One caller's own credentials: no failover, nothing recorded. */
export class ClientLeaseSource implements LeaseSource {
  readonly failover = false

  constructor (private readonly tokens: TokenService, private readonly token: string | undefined, private readonly cookie: string | undefined) {}

  async acquire (): Promise<CredentialLease> {
    return new ClientCredentialLease(this.tokens, this.token, this.cookie)
  }

  exhausted (last: UpstreamError): UpstreamError {
    return last
  }
}
