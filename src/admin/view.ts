/** The dashboard's snapshot of the pool: masked labels, dashboard states, absolute deadlines. */
import { identityStatus, statusCounts } from '../pool-view.js'
import type { Identity, IdentityPool } from '../pool.js'
import { adminLabel } from './mask.js'
import type { AdminIdentity, AdminState } from './schemas.js'

/** Error texts are shown, clipped; they never carry credentials (the upstream client words them). */
const ERROR_CHARS = 200

export function adminIdentity (pool: IdentityPool, i: Identity, runtime: boolean, now: number): AdminIdentity {
  const h = pool.health(i)
  const e = pool.eligibility(i)
  const ends = [h.cooldownUntil, h.rateLimitedUntil, h.challengedUntil].filter((t): t is number => t !== undefined && t > now)
  return {
    id: i.id,
    label: adminLabel(i, runtime),
    kind: i.kind,
    status: identityStatus(pool, i),
    runtime,
    blockedBy: e.kind === 'blocked' ? e.reason : null,
    failures: h.failures,
    inFlight: pool.inFlightOf(i),
    proxy: i.proxyUrl !== undefined,
    tokenExpiresAt: i.token !== undefined ? i.expiresAt ?? null : null,
    cooldownUntil: ends.length ? Math.max(...ends) : null,
    lastError: h.lastError === undefined ? null : h.lastError.slice(0, ERROR_CHARS),
    lastErrorAt: h.lastErrorAt ?? null,
    lastSuccess: h.lastSuccess ?? null,
  }
}

export interface StateContext {
  pool: IdentityPool
  isRuntime: (id: string) => boolean
  now: number
  version: string
  startedAt: number
  replicaId: string | undefined
  storeMode: string
  accountsPersistent: boolean
  serverMode: boolean
}

export function adminState (c: StateContext): AdminState {
  return {
    serverTime: c.now,
    version: c.version,
    startedAt: c.startedAt,
    replicaId: c.replicaId ?? null,
    storeMode: c.storeMode,
    accountsPersistent: c.accountsPersistent,
    serverMode: c.serverMode,
    counts: { total: c.pool.identities.length, ...statusCounts(c.pool) },
    identities: c.pool.identities.map((i) => adminIdentity(c.pool, i, c.isRuntime(i.id), c.now)),
  }
}
