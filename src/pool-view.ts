/**
 * Presentation of the pool for `/health`, `/refresh-token` and logs: counts, the token that expires
 * first, and one view per identity. No secrets; nothing here changes state.
 */
import { isAvailable } from './health.js'
import { REFRESH_MARGIN_MS, type Identity, type IdentityPool } from './pool.js'
import type { IdentityView, PoolCounts, TokenStatus } from './schemas.js'

export type { IdentityView, PoolCounts, TokenStatus }

/**
 * The state an identity is reported in: its breaker state, except that one whose token could not be
 * obtained (cookie refused, sign-in failed) is `degraded` until a token fetch succeeds, as the
 * original project marked invalid cookies.
 */
export function reportedState (pool: IdentityPool, i: Identity): IdentityView['state'] {
  const h = pool.health(i)
  return h.state === 'healthy' && h.authRefused ? 'degraded' : h.state
}

/** The dashboard's state vocabulary (`data-state` of an identity row, `status` in `/health`'s `identities[]`). */
export type IdentityStatus = IdentityView['status']

/**
 * One word for the operator: `disabled` (switched off), `cooldown` (rate limited or challenged),
 * `no_token` (no token and none can be obtained, or the credential was refused and its token
 * dropped), else the reported breaker state.
 */
export function identityStatus (pool: IdentityPool, i: Identity): IdentityStatus {
  const e = pool.eligibility(i)
  if (e.kind === 'blocked') {
    if (e.reason === 'disabled') return 'disabled'
    if (e.reason === 'rate_limited' || e.reason === 'challenge') return 'cooldown'
    if (e.reason === 'no_token' || (e.reason === 'auth_refused' && i.token === undefined)) return 'no_token'
  }
  return reportedState(pool, i)
}

/** Identities by dashboard status (every status present, zeros included). */
export function statusCounts (pool: IdentityPool): Record<IdentityStatus, number> {
  const out: Record<IdentityStatus, number> = { healthy: 0, degraded: 0, down: 0, cooldown: 0, disabled: 0, no_token: 0 }
  for (const i of pool.identities) out[identityStatus(pool, i)]++
  return out
}

/** Identities by reported state. */
export function poolCounts (pool: IdentityPool): PoolCounts {
  let healthy = 0
  let degraded = 0
  let down = 0
  for (const i of pool.identities) {
    const s = reportedState(pool, i)
    if (s === 'down') down++
    else if (s === 'degraded') degraded++
    else healthy++
  }
  return { total: pool.identities.length, healthy, degraded, down, initialized: pool.initialized }
}

/** Identities that cannot serve now, by the reason that blocks them. */
export function blockedCounts (pool: IdentityPool): Record<string, number> {
  const out: Record<string, number> = {}
  for (const i of pool.identities) {
    const e = pool.eligibility(i)
    if (e.kind === 'blocked') out[e.reason] = (out[e.reason] ?? 0) + 1
  }
  return out
}

/** Whether the gateway can take a completion now, and why not (`GET /ready`). */
export type Readiness = { ready: true; available: number } | { ready: false; reason: string; retryAfterMs: number | undefined }

/**
 * Server mode: ready while at least one identity can serve now (a token it holds or can fetch, no
 * cooldown, breaker closed or half-open), once the start-up token fetch has finished.
 */
export function readiness (pool: IdentityPool, now: number): Readiness {
  if (pool.identities.length === 0) return { ready: false, reason: 'No upstream account is configured', retryAfterMs: undefined }
  if (!pool.initialized) return { ready: false, reason: 'Fetching the upstream tokens at start-up', retryAfterMs: 1000 }
  let available = 0
  let until: number | undefined
  const reasons = new Set<string>()
  for (const i of pool.identities) {
    const e = pool.eligibility(i)
    if (e.kind !== 'blocked') {
      available++
      continue
    }
    reasons.add(e.reason)
    if (e.until !== undefined && (until === undefined || e.until < until)) until = e.until
  }
  if (available > 0) return { ready: true, available }
  return {
    ready: false,
    reason: `No upstream account can serve now (${[...reasons].sort().join(', ')})`,
    retryAfterMs: until === undefined ? undefined : Math.max(0, until - now),
  }
}


/** The token that expires first, described for /health. */
export function tokenStatus (pool: IdentityPool, now: number): TokenStatus {
  let first: Identity | undefined
  for (const i of pool.identities) {
    if (i.token === undefined) continue
    if (!first || (i.expiresAt ?? 0) < (first.expiresAt ?? 0)) first = i
  }
  if (!first) return { valid: false, expired: true, remainingTime: 0, needsRefresh: true, reason: 'No token found' }
  const remaining = Math.max(0, (first.expiresAt ?? 0) - now)
  if (remaining === 0) return { valid: false, expired: true, remainingTime: 0, needsRefresh: true, reason: 'Token has expired' }
  if (remaining < REFRESH_MARGIN_MS) return { valid: true, expired: false, remainingTime: remaining, needsRefresh: true, reason: 'Token expires within 24 hours' }
  return { valid: true, expired: false, remainingTime: remaining, needsRefresh: false, reason: 'Token is still valid' }
}


/** Every identity, for admins. */
export function identityViews (pool: IdentityPool, now: number): IdentityView[] {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString())
  const future = (t: number | undefined) => (t !== undefined && t > now ? iso(t) : null)
  return pool.identities.map((i) => {
    const h = pool.health(i)
    const e = pool.eligibility(i)
    return {
      id: i.id,
      label: i.label,
      kind: i.kind,
      state: reportedState(pool, i),
      status: identityStatus(pool, i),
      available: isAvailable(e),
      blockedBy: e.kind === 'blocked' ? e.reason : null,
      failures: h.failures,
      inFlight: pool.inFlightOf(i),
      tokenExpiresAt: iso(i.expiresAt),
      cooldownUntil: future(h.cooldownUntil),
      rateLimitedUntil: future(h.rateLimitedUntil),
      challengedUntil: future(h.challengedUntil),
      proxy: i.proxyUrl !== undefined,
      lastError: h.lastError ?? null,
      lastErrorAt: iso(h.lastErrorAt),
      lastSuccess: iso(h.lastSuccess),
    }
  })
}
