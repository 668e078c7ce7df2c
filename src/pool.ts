/**
 * The identity pool: upstream accounts, their tokens, and which one serves the next request.
 * Framework-free; the `identity-pool` plugin owns one instance per app.
 */
import { createHash } from 'node:crypto'
import { UpstreamError } from './errors.js'
import { decodeJwt, mask } from './jwt.js'
import type { Credentials } from './upstream/protocol.js'
import { tokenFromCookie } from './upstream/protocol.js'

export type IdentityState = 'healthy' | 'degraded' | 'down'

export interface Identity {
  /** Stable id: from the account's user id in its JWT, else a hash of the cookie. Never a secret. */
  id: string
  /** Masked label for logs and /health. */
  label: string
  cookie: string | undefined
  token: string | undefined
  /** Token expiry (ms since epoch). */
  expiresAt: number | undefined
  state: IdentityState
  failures: number
  inFlight: number
  lastError: string | undefined
  lastSuccess: number | undefined
  /** Whether a new token can be fetched (there is a cookie). */
  canRefresh: boolean
}

export interface PoolCounts { total: number; healthy: number; degraded: number; down: number; initialized: boolean }

/** Minimal information about the token that expires first, for /health. */
export interface TokenStatus { valid: boolean; expired: boolean; remainingTime: number; needsRefresh: boolean; reason: string }

/** Tokens closer than this to expiry are refreshed. */
export const REFRESH_MARGIN_MS = 24 * 3_600_000

function hashId (prefix: string, value: string): string {
  return prefix + createHash('sha256').update(value).digest('hex').slice(0, 12)
}

/** Build an identity from a cookie and/or a token. */
export function makeIdentity (cookie: string | undefined, token: string | undefined): Identity {
  const tok = token ?? (cookie ? tokenFromCookie(cookie) : undefined)
  const info = tok ? decodeJwt(tok) : undefined
  const id = info?.id ? hashId('u-', info.id) : hashId('c-', cookie ?? tok ?? '')
  const label = cookie ? `${id} (${mask(cookie)})` : `${id} (token ${mask(tok ?? '')})`
  return {
    id,
    label,
    cookie,
    // A token pulled out of the cookie is not trusted until the upstream confirmed it.
    token,
    expiresAt: token ? info?.expiresAt : undefined,
    state: 'healthy',
    failures: 0,
    inFlight: 0,
    lastError: undefined,
    lastSuccess: undefined,
    canRefresh: cookie !== undefined,
  }
}

export function credentialsOf (i: Identity): Credentials {
  return { token: i.token, cookie: i.cookie }
}

export class IdentityPool {
  readonly identities: Identity[]
  private cursor = 0
  initialized = false

  constructor (identities: Identity[], private readonly now: () => number) {
    // Two cookies of the same account collapse into one identity.
    const seen = new Map<string, Identity>()
    for (const i of identities) if (!seen.has(i.id)) seen.set(i.id, i)
    this.identities = [...seen.values()]
  }

  /** Identity whose token is present and not expired. */
  usable (i: Identity): boolean {
    return i.token !== undefined && (i.expiresAt === undefined || i.expiresAt > this.now()) && i.state !== 'down'
  }

  /** Round-robin over usable identities, skipping `exclude`. Throws 503 when none is usable. */
  acquire (exclude: ReadonlySet<string> = new Set()): Identity {
    const n = this.identities.length
    for (let k = 0; k < n; k++) {
      const i = this.identities[(this.cursor + k) % n]!
      if (!exclude.has(i.id) && this.usable(i)) {
        this.cursor = (this.cursor + k + 1) % n
        i.inFlight++
        return i
      }
    }
    throw new UpstreamError('no_identity', n === 0
      ? 'No upstream account is configured: set COOKIE (see the README), or run `npm run demo` to try the gateway against the simulator'
      : 'No upstream account is usable right now: every configured account is down or has no valid token')
  }

  release (i: Identity, ok: boolean, error?: string): void {
    i.inFlight = Math.max(0, i.inFlight - 1)
    if (ok) {
      i.lastSuccess = this.now()
      i.failures = Math.max(0, i.failures - 1)
    } else {
      i.failures++
      if (error !== undefined) i.lastError = error
    }
  }

  setToken (i: Identity, token: string, expiresAt: number | undefined): void {
    i.token = token
    i.expiresAt = expiresAt ?? decodeJwt(token)?.expiresAt
  }

  counts (): PoolCounts {
    let healthy = 0
    let degraded = 0
    let down = 0
    for (const i of this.identities) {
      if (i.state === 'down') down++
      else if (i.state === 'degraded') degraded++
      else if (this.usable(i)) healthy++
      else degraded++
    }
    return { total: this.identities.length, healthy, degraded, down, initialized: this.initialized }
  }

  /** Identities whose token is missing or expires within the margin and that can refresh. */
  needingRefresh (): Identity[] {
    const limit = this.now() + REFRESH_MARGIN_MS
    return this.identities.filter((i) => i.canRefresh && (i.token === undefined || i.expiresAt === undefined || i.expiresAt < limit))
  }

  /** The token that expires first, described for /health. */
  tokenStatus (): TokenStatus {
    const now = this.now()
    let first: Identity | undefined
    for (const i of this.identities) {
      if (i.token === undefined) continue
      if (!first || (i.expiresAt ?? 0) < (first.expiresAt ?? 0)) first = i
    }
    if (!first) return { valid: false, expired: true, remainingTime: 0, needsRefresh: true, reason: 'No token found' }
    const remaining = Math.max(0, (first.expiresAt ?? 0) - now)
    if (remaining === 0) return { valid: false, expired: true, remainingTime: 0, needsRefresh: true, reason: 'Token has expired' }
    if (remaining < REFRESH_MARGIN_MS) return { valid: true, expired: false, remainingTime: remaining, needsRefresh: true, reason: 'Token expires within 24 hours' }
    return { valid: true, expired: false, remainingTime: remaining, needsRefresh: false, reason: 'Token is still valid' }
  }
}
