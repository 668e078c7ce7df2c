/**
 * Operator actions made on a replica while the shared store was away survive its return (newest
 * wins): `mergeHealth` part by part, the memory store's stamps, the state file, and two
 * `RedisStore`s on a real redis-server frozen (SIGSTOP) under them.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { DEFAULT_POLICY, newHealth, type HealthRecord } from '../src/health.js'
import { MemoryHealthStore, type Candidate } from '../src/store.js'
import { createRedis } from '../src/store/redis/connection.js'
import { mergeHealth } from '../src/store/redis/health.js'
import { RedisStore } from '../src/store/redis/index.js'
import { mergeStamps } from '../src/store/stamps.js'
import { IdentityPool, makeIdentity, type Identity } from '../src/pool.js'
import { StateKeys, restorePool, serializePool } from '../src/state.js'
import { startRedis, type RedisServer, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const policy = { ...DEFAULT_POLICY }
const cred = { canRefresh: true, tokenValid: true }
const cands = (...ids: string[]): Candidate[] => ids.map((id) => ({ id, cred }))
const rec = (o: Partial<HealthRecord>): HealthRecord => ({ ...newHealth(), ...o })

t.test('mergeHealth: a reset newer than what was learned clears it, on either side', async (t) => {
  // Redis learned a rate limit at 5; the replica reset every cooldown at 10 during the outage.
  const shared = rec({ rateLimitedUntil: 100, rateLimits: 1, challengedUntil: 90, challenges: 1, state: 'down', failures: 5, cooldownUntil: 80, cooldownMs: 300, authRefused: true, stamps: { limit: 5, challenge: 5, breaker: 5, auth: 5 } })
  const mine = rec({ stamps: { reset: 10 } })
  const a = { ...shared }
  mergeHealth(a, mine)
  t.same([a.rateLimitedUntil, a.rateLimits, a.challengedUntil, a.state, a.failures, a.cooldownUntil, a.authRefused], [undefined, 0, undefined, 'healthy', 0, undefined, false])
  t.same(a.stamps, { limit: 5, challenge: 5, breaker: 5, auth: 5, reset: 10 })
  // The other way round (the replica's view merged into a reset record).
  const b = { ...mine }
  mergeHealth(b, shared)
  t.equal(b.rateLimitedUntil, undefined)
  t.equal(b.state, 'healthy')
})

t.test('mergeHealth: what was learned after the reset survives, whichever side merges first', async (t) => {
  const shared = rec({ rateLimitedUntil: 120_005, rateLimits: 1, stamps: { limit: 5 } })
  const resetOnA = rec({ stamps: { reset: 10 } })
  // B learned a shorter rate limit at 12, after A's reset at 10.
  const learnedOnB = rec({ rateLimitedUntil: 30_012, rateLimits: 2, stamps: { limit: 12 } })
  for (const order of [[resetOnA, learnedOnB], [learnedOnB, resetOnA]]) {
    const r = { ...shared }
    for (const side of order) mergeHealth(r, side)
    t.equal(r.rateLimitedUntil, 30_012, 'B\'s deadline, not the one the operator cleared')
    t.equal(r.rateLimits, 2)
  }
})

t.test('mergeHealth: a challenge reset keeps rate limits; parts learned at the same stamp keep the worse', async (t) => {
  const shared = rec({ rateLimitedUntil: 100, rateLimits: 1, challengedUntil: 90, challenges: 2, stamps: { limit: 5, challenge: 5 } })
  const r = { ...shared }
  mergeHealth(r, rec({ stamps: { challengeReset: 10 } }))
  t.equal(r.rateLimitedUntil, 100)
  t.equal(r.challengedUntil, undefined)
  // No stamps anywhere (records from before stamps existed): the later deadline, the worse state, the higher counters.
  const old = rec({ rateLimitedUntil: 50, rateLimits: 3, state: 'degraded', failures: 3, cooldownMs: 10, cooldownUntil: 60, challengedUntil: 70, challenges: 1 })
  const other = rec({ rateLimitedUntil: 80, rateLimits: 1, state: 'down', failures: 5, cooldownMs: 5, cooldownUntil: 40, authRefused: true, lastError: 'x', lastErrorAt: 9 })
  mergeHealth(old, other)
  t.same([old.rateLimitedUntil, old.rateLimits, old.state, old.failures, old.cooldownMs, old.cooldownUntil, old.challengedUntil, old.challenges, old.authRefused, old.lastError],
    [80, 3, 'down', 5, 10, 60, 70, 1, true, 'x'])
  t.equal(old.stamps, undefined)
})

t.test('mergeHealth: the newer disabled switch wins; without stamps it only fills a gap', async (t) => {
  const on = rec({ disabled: true, stamps: { disabled: 5 } })
  const enabled = rec({ disabled: false, stamps: { disabled: 10 } })
  const r1 = { ...on }
  mergeHealth(r1, enabled)
  t.equal(r1.disabled, false, 'enabled later: enabled')
  const r2 = { ...enabled }
  mergeHealth(r2, on)
  t.equal(r2.disabled, false, 'an older disable does not override')
  const legacy = rec({ disabled: true })
  const r3 = { ...legacy }
  mergeHealth(r3, enabled)
  t.equal(r3.disabled, false, 'a stamped switch beats an unstamped one')
  const r4 = rec({})
  mergeHealth(r4, legacy)
  t.equal(r4.disabled, true, 'fills a gap')
  const r5 = rec({ disabled: false })
  mergeHealth(r5, legacy)
  t.equal(r5.disabled, false, 'no stamps: a value already there stays')
  t.equal(mergeStamps(undefined, undefined), undefined)
})

t.test('MemoryHealthStore stamps what it learns and what the operator does', async (t) => {
  let clock = 1000
  const m = new MemoryHealthStore(policy, () => clock)
  m.record('x', { kind: 'rate_limited', error: '429', retryAfterMs: 60_000 }, false, 500)
  t.same(m.health('x').stamps, { limit: 500 })
  m.annotate('x', { authRefused: true }, 600)
  t.same(m.health('x').stamps, { limit: 500, auth: 600 })
  m.reset('x', 'challenge')
  t.same(m.health('x').stamps, { limit: 500, auth: 600, challengeReset: 1000 })
  clock = 2000
  m.reset('x', 'all')
  t.equal(m.health('x').stamps?.reset, 2000)
  const seen: string[] = []
  m.subscribe((c) => { seen.push(c.id) })
  m.setDisabled('y', false)
  t.same(seen, [], 'no change announced')
  t.same([m.health('y').disabled, m.health('y').stamps?.disabled], [false, 2000], 'but stamped: the operator\'s word is the newest')
  clock = 1500
  m.setDisabled('y', true)
  t.equal(m.health('y').stamps?.disabled, 2000, 'a stamp never moves back')
  t.same(seen, ['y'])
  // The default clock is the wall clock.
  const w = new MemoryHealthStore(policy)
  w.setDisabled('z', true)
  t.ok((w.health('z').stamps?.disabled ?? 0) >= Date.now() - 1000)
})

t.test('the state file keeps the stamps, and an operator\'s "enabled" once stamped', async (t) => {
  const p = new IdentityPool([makeIdentity({ cookie: 'token=a' }), makeIdentity({ cookie: 'token=b' }), makeIdentity({ cookie: 'token=c' })], { now: () => 1000 })
  const [a, b, c] = p.identities as [Identity, Identity, Identity]
  p.restore(a, { ...newHealth(), disabled: false, rateLimitedUntil: 9000, stamps: { disabled: 50, limit: 40, reset: 30 } })
  p.restore(b, { ...newHealth(), disabled: true, stamps: { disabled: 60 } })
  p.restore(c, { ...newHealth(), disabled: false })
  const text = serializePool(p, new StateKeys(undefined), 1000)
  const doc = JSON.parse(text)
  t.same([doc.identities[a.id].disabled, doc.identities[a.id].stamps], [false, { disabled: 50, limit: 40, reset: 30 }])
  t.same([doc.identities[c.id].disabled, doc.identities[c.id].stamps], [undefined, undefined], 'an unstamped enabled identity saves no flag')
  // Junk in the stamps is dropped, the rest kept.
  doc.identities[b.id].stamps = { disabled: 60, limit: 'soon', challenge: 7 }
  doc.identities[c.id].stamps = 'garbage'
  doc.identities[c.id].disabled = false
  const fresh = new IdentityPool([a, b, c].map((i) => makeIdentity({ cookie: i.cookie! })), { now: () => 1000 })
  restorePool(fresh, JSON.stringify(doc), undefined)
  const [fa, fb, fc] = fresh.identities.map((i) => fresh.health(i))
  t.same([fa!.disabled, fa!.stamps, fa!.rateLimitedUntil], [false, { disabled: 50, limit: 40, reset: 30 }, 9000])
  t.same([fb!.disabled, fb!.stamps], [true, { disabled: 60, challenge: 7 }])
  t.same([fc!.disabled, fc!.stamps], [undefined, undefined], 'an unstamped false is no operator action')
})

function replica (t: Test, server: RedisServer, ns: string, name: string): RedisStore {
  const s = new RedisStore({
    redis: createRedis(server.url, name, 200), ownsClient: true, namespace: ns, replicaId: name, policy,
    conversations: { ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 }, resyncMs: 200,
  })
  t.teardown(async () => { await s.close() })
  return s
}

t.test('operator actions during an outage survive its end (Redis frozen)', { skip }, async (t) => {
  const server = await startRedis(t)
  const ns = randomUUID()
  const a = replica(t, server, ns, 'A')
  const b = replica(t, server, ns, 'B')
  await until(() => a.mode() === 'redis' && b.mode() === 'redis')
  // Shared before the outage: x rate limited for 2 minutes, z disabled.
  b.identities.record('x', { kind: 'rate_limited', error: '429', retryAfterMs: 120_000 }, false, Date.now())
  b.identities.setDisabled('z', true)
  await b.flush()
  await until(() => (a.identities.health('x').rateLimitedUntil ?? 0) > Date.now() && a.identities.health('z').disabled === true)

  server.freeze()
  await a.identities.pickShared!(cands('x', 'y'), new Set(), Date.now())
  await b.identities.pickShared!(cands('x', 'y'), new Set(), Date.now())
  t.equal(a.mode(), 'degraded-local')
  t.equal(b.mode(), 'degraded-local')
  // On A, the operator resets x, enables z and disables y; on B, later, w learns a rate limit.
  a.identities.reset('x', 'all')
  a.identities.setDisabled('z', false)
  a.identities.setDisabled('y', true)
  await new Promise((r) => setTimeout(r, 5))
  b.identities.record('w', { kind: 'rate_limited', error: '429', retryAfterMs: 30_000 }, false, Date.now())
  server.thaw()
  await until(() => a.mode() === 'redis' && b.mode() === 'redis', 10_000)
  await a.flush()
  await b.flush()
  await until(() => b.identities.health('z').disabled === false && b.identities.health('y').disabled === true && b.identities.health('x').rateLimitedUntil === undefined)
  t.pass('B\'s mirror took the operator\'s actions')
  for (const s of [a, b]) {
    t.equal(s.identities.health('x').rateLimitedUntil, undefined, 'the reset was not undone')
    t.equal(s.identities.health('z').disabled, false, 'the enable was not undone')
    t.equal(s.identities.health('y').disabled, true)
    t.ok((s.identities.health('w').rateLimitedUntil ?? 0) > Date.now(), 'what B learned meanwhile is kept')
  }
  const picks = new Set<string>()
  for (let k = 0; k < 4; k++) {
    const p = await b.identities.pickShared!(cands('x', 'y', 'z', 'w'), new Set(), Date.now())
    if (p.ok) picks.add(p.id)
  }
  t.same([...picks].sort(), ['x', 'z'], 'the shared pick serves the reset and the enabled account, not the disabled or limited one')
})

t.test('a reset on A, then a rate limit learned on B after it: B\'s deadline survives (Redis frozen)', { skip }, async (t) => {
  const server = await startRedis(t)
  const ns = randomUUID()
  const a = replica(t, server, ns, 'A')
  const b = replica(t, server, ns, 'B')
  await until(() => a.mode() === 'redis' && b.mode() === 'redis')
  a.identities.record('x', { kind: 'rate_limited', error: '429', retryAfterMs: 600_000 }, false, Date.now())
  await a.flush()
  await until(() => (b.identities.health('x').rateLimitedUntil ?? 0) > Date.now())
  server.freeze()
  await a.identities.pickShared!(cands('x'), new Set(), Date.now())
  await b.identities.pickShared!(cands('x'), new Set(), Date.now())
  a.identities.reset('x', 'all')
  await new Promise((r) => setTimeout(r, 5))
  const learned = Date.now()
  b.identities.record('x', { kind: 'rate_limited', error: '429', retryAfterMs: 30_000 }, false, learned)
  server.thaw()
  await until(() => a.mode() === 'redis' && b.mode() === 'redis', 10_000)
  await a.flush()
  await b.flush()
  await until(() => a.identities.health('x').rateLimitedUntil === learned + 30_000)
  t.equal(b.identities.health('x').rateLimitedUntil, learned + 30_000, 'B\'s 30 s, not the 10 min the operator cleared')
})

t.test('stamps made during an outage are on Redis\'s clock, not a replica clock that runs behind', { skip }, async (t) => {
  const server = await startRedis(t)
  const behind = 90_000
  const s = new RedisStore({
    redis: createRedis(server.url, 'late', 200), ownsClient: true, namespace: randomUUID(), replicaId: 'late', policy,
    conversations: { ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 }, resyncMs: 100, now: () => Date.now() - behind,
  })
  t.teardown(async () => { await s.close() })
  await until(() => s.mode() === 'redis')
  server.freeze()
  t.teardown(() => { server.thaw() })
  await s.identities.pickShared!(cands('x'), new Set(), Date.now())
  t.equal(s.mode(), 'degraded-local')
  s.identities.setDisabled('x', true)
  const stamp = s.identities.health('x').stamps?.disabled ?? 0
  t.ok(Math.abs(stamp - Date.now()) < 5_000, `the operator's stamp follows Redis's clock (${Date.now() - stamp} ms from it, the replica's clock is ${behind} ms behind)`)
})
