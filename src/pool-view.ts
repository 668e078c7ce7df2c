/**
 * Presentation of the pool for `/health`, `/refresh-token` and logs: counts, the token that expires
 * first, and one view per identity. No secrets; nothing here changes state.
 */
import { isAvailable } from './health.js'
import { REFRESH_MARGIN_MS, type Identity, type IdentityPool } from './pool.js'
import type { IdentityView, PoolCounts, TokenStatus } from './schemas.js'

export type { IdentityView, PoolCounts, TokenStatus }

/** Identities by breaker state; a refused credential is not healthy (the original marked invalid cookies degraded). */
export function poolCounts (pool: IdentityPool): PoolCounts {
  let healthy = 0
  let degraded = 0
  let down = 0
  for (const i of pool.identities) {
    const h = pool.health(i)
    if (h.state === 'down') down++
    // A refused credential is not healthy (the original project marked invalid cookies degraded).
    else if (h.state === 'degraded' || h.authRefused) degraded++
    else healthy++
  }
  return { total: pool.identities.length, healthy, degraded, down, initialized: pool.initialized }
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
      state: h.state,
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
