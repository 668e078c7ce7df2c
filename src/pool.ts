/**
 * The identity pool: upstream accounts and their tokens, and which one serves the next request.
 * Framework-free; the `identity-pool` plugin owns one instance per app.
 *
 * Health (breaker, rate-limit and challenge cooldowns, trials) is not kept here: it is a pure
 * state machine (`src/health.ts`) whose records live in the store (`qwenStore`), which also picks
 * the next identity. The pool adds what only this process knows: credentials, tokens, in-flight
 * counts, logs and counters.
 */
import { createHash } from 'node:crypto'
import { UpstreamError } from './errors.js'
import { DEFAULT_POLICY, eligibility, isAvailable, type Applied, type CredentialState, type Eligibility, type HealthRecord, type IdentityState, type Outcome, type PoolPolicy } from './health.js'
import { decodeJwt, mask } from './jwt.js'
import { MemoryStore, type Candidate, type IdentityHealthStore, type Picked } from './store.js'
import type { Credentials } from './upstream/protocol.js'
import { tokenFromCookie } from './upstream/protocol.js'

export { DEFAULT_POLICY, type IdentityState, type Outcome, type PoolPolicy }
export { splitAccount, splitProxy } from './entries.js'
export type IdentityKind = 'cookie' | 'token' | 'account'

/** One configured upstream account: who it is and how to get its token. Its health lives in the store. */
export interface Identity {
  /** Stable id: from the account's user id in its JWT (`u-…`), the e-mail (`e-…`), else a cookie hash (`c-…`). Never a secret. */
  id: string
  /** Masked label for logs and /health. */
  label: string
  kind: IdentityKind
  cookie: string | undefined
  /** E-mail and password of a sign-in account (kept in memory only). */
  email: string | undefined
  password: string | undefined
  /** Outbound HTTP(S) proxy for this identity's upstream traffic. */
  proxyUrl: string | undefined
  token: string | undefined
  /** Token expiry (ms since epoch). */
  expiresAt: number | undefined
  /** Whether a new token can be obtained (a cookie, or e-mail and password). */
  canRefresh: boolean
}

/** One identity handed out for one upstream attempt. */
export interface Lease { identity: Identity; trial: boolean }

/** Counters for the metrics a later release exposes. */
export interface PoolCounters {
  acquired: number
  trials: number
  successes: number
  failures: number
  rateLimited: number
  challenges: number
  transitions: number
  refreshes: number
  refreshFailures: number
}

/** Tokens closer than this to expiry are refreshed. */
export const REFRESH_MARGIN_MS = 24 * 3_600_000

function hashId (prefix: string, value: string): string {
  return prefix + createHash('sha256').update(value).digest('hex').slice(0, 12)
}

export interface IdentitySpec {
  cookie?: string
  token?: string
  email?: string
  password?: string
  proxyUrl?: string
  /** Where it was configured, for the label (e.g. `cookie 2`). */
  source?: string
}

/** Build an identity from a cookie, a token, or e-mail and password. */
export function makeIdentity (spec: IdentitySpec): Identity {
  const { cookie, token, email, password, proxyUrl, source } = spec
  const jwt = token ?? (cookie ? tokenFromCookie(cookie) : undefined)
  const info = jwt ? decodeJwt(jwt) : undefined
  const kind: IdentityKind = email ? 'account' : cookie ? 'cookie' : 'token'
  const id = email
    ? hashId('e-', email.toLowerCase())
    : info?.id ? hashId('u-', info.id) : hashId('c-', cookie ?? jwt ?? '')
  const what = email ? `${source ?? 'account'} ${mask(email, 3)}` : source ?? (cookie ? 'cookie' : 'token')
  return {
    id,
    label: `${id} (${what})`,
    kind,
    cookie,
    email,
    password,
    proxyUrl,
    // A token pulled out of the cookie is not used until the upstream has confirmed it.
    token,
    expiresAt: token ? info?.expiresAt : undefined,
    canRefresh: cookie !== undefined || (email !== undefined && password !== undefined),
  }
}

export function credentialsOf (i: Identity): Credentials {
  return { token: i.token, cookie: i.cookie }
}

interface Logger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

export interface PoolOptions {
  now: () => number
  /** Where health records live and the next identity is picked (`qwenStore`; a private in-memory one by default). */
  store?: IdentityHealthStore
  policy?: Partial<PoolPolicy>
  log?: Logger
  /** Called after every change worth persisting (health changes and new tokens, not neutral releases). */
  onChange?: () => void
  /** Called for every breaker transition and cooldown (the app's event surface). */
  onHealth?: (identity: Identity, applied: Applied) => void
}

export class IdentityPool {
  readonly identities: Identity[]
  readonly policy: PoolPolicy
  readonly counters: PoolCounters = { acquired: 0, trials: 0, successes: 0, failures: 0, rateLimited: 0, challenges: 0, transitions: 0, refreshes: 0, refreshFailures: 0 }
  initialized = false
  private readonly now: () => number
  private readonly store: IdentityHealthStore
  private readonly inFlight = new Map<string, number>()
  private readonly byId = new Map<string, Identity>()
  private readonly unsubscribe: () => void

  constructor (identities: Identity[], private readonly opts: PoolOptions) {
    // Two entries for the same account collapse into one identity.
    for (const i of identities) if (!this.byId.has(i.id)) this.byId.set(i.id, i)
    this.identities = [...this.byId.values()]
    this.policy = { ...DEFAULT_POLICY, ...opts.policy }
    this.now = opts.now
    this.store = opts.store ?? new MemoryStore(this.policy).identities
    this.unsubscribe = this.store.subscribe(({ id, applied }) => {
      const i = this.byId.get(id)
      if (!i) return
      if (applied.transition) this.counters.transitions++
      this.logApplied(i, applied)
      this.opts.onHealth?.(i, applied)
      this.changed()
    })
  }

  /** Stop listening to the store (the app closes). */
  close (): void {
    this.unsubscribe()
  }

  get (id: string): Identity | undefined {
    return this.byId.get(id)
  }

  /** The identity's health record (read only). */
  health (i: Identity): Readonly<HealthRecord> {
    return this.store.health(i.id)
  }

  private tokenValid (i: Identity, now: number): boolean {
    return i.token !== undefined && (i.expiresAt === undefined || i.expiresAt > now)
  }

  private credential (i: Identity, now: number): CredentialState {
    return { canRefresh: i.canRefresh, tokenValid: this.tokenValid(i, now) }
  }

  /** The one eligibility rule (src/health.ts), for this identity now. */
  eligibility (i: Identity): Eligibility {
    const now = this.now()
    return eligibility(this.store.health(i.id), this.credential(i, now), now)
  }

  /** Whether the identity could serve a request right now (for counts and the model list). */
  available (i: Identity): boolean {
    return isAvailable(this.eligibility(i))
  }

  /** A usable identity with a valid token, for calls that do not count (the model list). */
  peek (): Identity | undefined {
    const now = this.now()
    return this.identities.find((i) => this.tokenValid(i, now) && this.eligibility(i).kind === 'ready')
  }

  /**
   * The next identity, round-robin, skipping `exclude`: ready ones and half-open trials first,
   * then degraded ones whose trial is already running. Throws when nothing is eligible.
   */
  acquire (exclude: ReadonlySet<string> = new Set()): Lease {
    const now = this.now()
    return this.lease(this.store.pick(this.candidates(now), exclude, now), exclude)
  }

  /**
   * `acquire` across replicas: with a shared store, one round-robin cursor and one half-open trial
   * for every replica (one round trip); the local `acquire` otherwise.
   */
  async acquireShared (exclude: ReadonlySet<string> = new Set()): Promise<Lease> {
    if (!this.store.pickShared) return this.acquire(exclude)
    const now = this.now()
    return this.lease(await this.store.pickShared(this.candidates(now), exclude, now), exclude)
  }

  private candidates (now: number): Candidate[] {
    return this.identities.map((i) => ({ id: i.id, cred: this.credential(i, now) }))
  }

  private lease (picked: Picked, exclude: ReadonlySet<string>): Lease {
    if (!picked.ok) throw this.exhausted(exclude)
    const identity = this.byId.get(picked.id)!
    this.inFlight.set(identity.id, (this.inFlight.get(identity.id) ?? 0) + 1)
    this.counters.acquired++
    if (picked.trial) {
      this.counters.trials++
      this.opts.log?.info({ identity: identity.label, state: this.store.health(identity.id).state }, 'identity half-open: trial request')
    }
    return { identity, trial: picked.trial }
  }

  /**
   * The error for "nothing can serve" (DECISIONS "Error mapping"), following the identity that
   * comes back first: a rate limit gives the 429 rules, a challenge 503 `upstream_challenge`, a
   * breaker cooldown 503 `no_upstream_identity`, each with `retry-after` until then.
   */
  exhausted (exclude: ReadonlySet<string> = new Set()): UpstreamError {
    if (this.identities.length === 0) {
      return new UpstreamError('no_identity', 'No upstream account is configured: set COOKIE (see the README), or run `npm run demo` to try the gateway against the simulator')
    }
    const now = this.now()
    let first: { reason: string; until: number } | undefined
    let refused = false
    let disabled = 0
    let considered = 0
    for (const i of this.identities) {
      if (exclude.has(i.id)) continue
      considered++
      const e = this.eligibility(i)
      if (e.kind !== 'blocked') continue
      if (e.reason === 'auth_refused') refused = true
      if (e.reason === 'disabled') disabled++
      if (e.until !== undefined && (!first || e.until < first.until)) first = { reason: e.reason, until: e.until }
    }
    if (first) {
      const retryAfterMs = first.until - now
      if (first.reason === 'rate_limited') return new UpstreamError('rate_limited', 'Every upstream account is rate limited', { retryAfterMs })
      if (first.reason === 'challenge') {
        return new UpstreamError('challenge', 'Every usable upstream account is waiting on an anti-bot challenge; open chat.qwen.ai in a browser with these accounts, pass the check, then call POST /refresh-token (see the README)', { retryAfterMs })
      }
      return new UpstreamError('no_identity', 'No upstream account is usable right now: every configured account is cooling down after failures', { retryAfterMs })
    }
    if (considered > 0 && disabled === considered) return new UpstreamError('no_identity', 'No upstream account is usable right now: every account is disabled by the operator (enable one in the dashboard)')
    if (refused) return new UpstreamError('auth_failed', 'The upstream refuses the credentials of every usable account: refresh their cookies, then call POST /refresh-token')
    return new UpstreamError('no_identity', 'No upstream account is usable right now: every configured account is cooling down, down, or without a token')
  }

  /** Record how a leased attempt ended. A neutral outcome changes nothing worth saving. */
  release (lease: Lease, outcome: Outcome): void {
    const i = lease.identity
    this.inFlight.set(i.id, Math.max(0, (this.inFlight.get(i.id) ?? 0) - 1))
    switch (outcome.kind) {
      case 'success': this.counters.successes++; break
      case 'failure': case 'auth_refused': this.counters.failures++; break
      case 'rate_limited': this.counters.rateLimited++; break
      case 'challenge': this.counters.challenges++; break
    }
    if (outcome.kind === 'neutral' && !lease.trial) return
    this.store.record(i.id, outcome, lease.trial, this.now())
  }

  /** Requests in flight on the identity (this process). */
  inFlightOf (i: Identity): number {
    return this.inFlight.get(i.id) ?? 0
  }

  /** Put back a saved health record (restoring state at start-up). */
  restore (i: Identity, record: HealthRecord): void {
    this.store.put(i.id, record)
  }

  /** Operator reset (POST /refresh-token): clear the challenge cooldown, or every cooldown. */
  reset (i: Identity, which: 'challenge' | 'all'): void {
    this.store.reset(i.id, which)
  }

  private logApplied (i: Identity, applied: Applied): void {
    const log = this.opts.log
    if (!log) return
    const t = applied.transition
    if (t) {
      const h = this.store.health(i.id)
      const fields = { identity: i.label, from: t.from, to: t.to, failures: h.failures, cooldownUntil: h.cooldownUntil ? new Date(h.cooldownUntil).toISOString() : undefined, why: t.why }
      if (t.to === 'healthy') log.info(fields, 'identity state changed')
      else log.warn(fields, 'identity state changed')
    }
    const c = applied.cooldown
    if (c?.kind === 'rate_limited') log.warn({ identity: i.label, until: new Date(c.until).toISOString() }, 'identity rate limited')
    else if (c?.kind === 'challenge') log.warn({ identity: i.label, until: new Date(c.until).toISOString() }, 'identity hit an anti-bot challenge: refresh it in a browser')
    else if (c?.kind === 'breaker') log.warn({ identity: i.label, state: this.store.health(i.id).state, cooldownMs: this.store.health(i.id).cooldownMs }, 'identity trial request failed: cooldown doubled')
  }

  private changed (): void {
    this.opts.onChange?.()
  }

  setToken (i: Identity, token: string, expiresAt: number | undefined): void {
    i.token = token
    i.expiresAt = expiresAt ?? decodeJwt(token)?.expiresAt
    this.counters.refreshes++
    if (this.store.health(i.id).authRefused) this.store.annotate(i.id, { authRefused: false }, this.now())
    this.changed()
  }

  /**
   * A token fetch failed. A refused credential takes the identity out of rotation (its token is
   * dropped) until a fetch succeeds; other failures (challenge, rate limit, outage) are recorded
   * as the outcome they are.
   */
  refreshFailed (i: Identity, err: UpstreamError | Error): void {
    this.counters.refreshFailures++
    const message = err.message
    if (err instanceof UpstreamError && err.kind === 'auth_failed') {
      // Not a breaker failure by itself (a request that met it records one); out of rotation until a fetch succeeds.
      i.token = undefined
      i.expiresAt = undefined
      this.store.annotate(i.id, { authRefused: true, error: message }, this.now())
    } else if (err instanceof UpstreamError && err.kind === 'challenge') {
      this.counters.challenges++
      this.store.record(i.id, { kind: 'challenge', error: message }, false, this.now())
    } else if (err instanceof UpstreamError && err.kind === 'rate_limited') {
      this.counters.rateLimited++
      this.store.record(i.id, { kind: 'rate_limited', error: message, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) }, false, this.now())
    } else {
      // An outage while fetching a token says nothing new about the account: note it, count nothing.
      this.store.annotate(i.id, { error: message }, this.now())
    }
  }


  /** Identities that can refresh and whose token is missing or expires within the margin. */
  needingRefresh (): Identity[] {
    const limit = this.now() + REFRESH_MARGIN_MS
    return this.identities.filter((i) => i.canRefresh && (i.token === undefined || i.expiresAt === undefined || i.expiresAt < limit))
  }

  /** Whether the identity's token must be fetched before it can be used. */
  needsTokenNow (i: Identity): boolean {
    return i.canRefresh && !this.tokenValid(i, this.now() + 60_000)
  }

  /** Add an identity at runtime (dashboard accounts); false when one with its id is already in the pool. */
  add (i: Identity): boolean {
    if (this.byId.has(i.id)) return false
    this.byId.set(i.id, i)
    this.identities.push(i)
    this.changed()
    return true
  }

  /** Take an identity out of the pool (a runtime account removed); false when there is none with that id. */
  remove (id: string): boolean {
    const i = this.byId.get(id)
    if (!i) return false
    this.byId.delete(id)
    this.identities.splice(this.identities.indexOf(i), 1)
    this.inFlight.delete(id)
    this.changed()
    return true
  }
}
