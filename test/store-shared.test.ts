/**
 * Two `RedisStore`s on one real redis-server stand in for two replicas: one round-robin cursor, a
 * rate limit learned by one respected by the other, one half-open trial between them, one chat
 * lock; then Redis killed, hung (SIGSTOP) and restarted empty under them.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { DEFAULT_POLICY } from '../src/health.js'
import type { Candidate } from '../src/store.js'
import { createRedis, redisUrlFromEnv } from '../src/store/redis/connection.js'
import { RedisStore } from '../src/store/redis/index.js'
import { startRedis, type RedisServer, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const cred = { canRefresh: true, tokenValid: true }
const cands = (...ids: string[]): Candidate[] => ids.map((id) => ({ id, cred }))
const policy = { ...DEFAULT_POLICY }

function replica (t: Test, server: RedisServer, ns: string, name: string, o: { clock?: 'redis' | 'caller'; redis?: Redis } = {}): RedisStore {
  const s = new RedisStore({
    redis: o.redis ?? createRedis(server.url, name, 200), ownsClient: o.redis === undefined, namespace: ns, replicaId: name, policy,
    conversations: { ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 }, resyncMs: 200, clock: o.clock ?? 'redis',
  })
  t.teardown(async () => { await s.close() })
  return s
}

t.test('connection settings: first found wins', async (t) => {
  t.equal(redisUrlFromEnv({}), undefined)
  t.equal(redisUrlFromEnv({ REDIS_URI: 'redis://b', REDIS_CONNECTION_STRING: 'redis://c', REDIS_HOST: 'h' }), 'redis://b')
  t.equal(redisUrlFromEnv({ REDIS_URL: ' ', REDIS_CONNECTION_STRING: 'redis://c' }), 'redis://c')
  t.equal(redisUrlFromEnv({ REDIS_URL: 'redis://a', REDIS_URI: 'redis://b' }), 'redis://a')
  t.equal(redisUrlFromEnv({ REDIS_HOST: 'h', REDIS_PASSWORD: 'p@ss' }), 'redis://:p%40ss@h:6379')
  t.equal(redisUrlFromEnv({ REDIS_HOST: 'h', REDIS_PORT: '7000' }), 'redis://h:7000')
})

t.test('two replicas', { skip }, async (t) => {
  const server = await startRedis(t)

  t.test('one round-robin cursor: 99 concurrent picks from both spread 33/33/33', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A')
    const b = replica(t, server, ns, 'B')
    await until(() => a.mode() === 'redis' && b.mode() === 'redis')
    const picks = await Promise.all(Array.from({ length: 99 }, async (_, k) => await (k % 2 ? a : b).identities.pickShared!(cands('x', 'y', 'z'), new Set(), 0)))
    const count: Record<string, number> = {}
    for (const p of picks) if (p.ok) count[p.id] = (count[p.id] ?? 0) + 1
    t.same(count, { x: 33, y: 33, z: 33 })
  })

  t.test('a rate limit learned by A is respected by B; one trial between them; the mirror follows', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A')
    const b = replica(t, server, ns, 'B')
    await until(() => a.mode() === 'redis' && b.mode() === 'redis')
    a.identities.record('x', { kind: 'rate_limited', error: '429', retryAfterMs: 60_000 }, false, Date.now())
    await a.flush()
    for (let k = 0; k < 6; k++) {
      const p = await b.identities.pickShared!(cands('x', 'y'), new Set(), Date.now())
      t.same(p.ok && p.id, 'y', 'B never picks the limited account')
    }
    await until(() => (b.identities.health('x').rateLimitedUntil ?? 0) > Date.now(), 2000)
    t.pass('B\'s mirror learned the cooldown from the channel')

    for (let k = 0; k < 5; k++) b.identities.record('z', { kind: 'failure', error: '500' }, false, Date.now())
    await b.flush()
    await until(() => a.identities.health('z').state === 'down')
    t.equal(a.identities.health('z').failures, 5, 'failures from B counted once each')
    // Cooldown over (a fake deadline in the past): exactly one trial across both replicas.
    const fix = new Redis(server.url)
    const rec = JSON.parse((await fix.hget(a.keys.health, 'z'))!)
    rec.cooldownUntil = 1
    await fix.hset(a.keys.health, 'z', JSON.stringify(rec))
    const trials = await Promise.all(Array.from({ length: 10 }, async (_, k) => await (k % 2 ? a : b).identities.pickShared!(cands('z'), new Set(), Date.now())))
    t.equal(trials.filter((p) => p.ok).length, 1, 'exactly one trial')
    t.ok(trials.find((p) => p.ok && p.trial))
    fix.disconnect()
  })

  t.test('conversations and chat locks are shared', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A')
    const b = replica(t, server, ns, 'B')
    await until(() => a.mode() === 'redis' && b.mode() === 'redis')
    await a.conversations.put('h1', { identity: 'x', chatId: 'c1', responseId: 'r1' }, Date.now())
    t.same(await b.conversations.get('h1', Date.now()), { identity: 'x', chatId: 'c1', responseId: 'r1' })
    t.ok(await a.conversations.lock('c1', 'req-a', Date.now()))
    t.notOk(await b.conversations.lock('c1', 'req-b', Date.now()), 'never two generations in one chat')
    await a.conversations.unlock('c1', 'req-a')
    t.ok(await b.conversations.lock('c1', 'req-b', Date.now()))
    await b.readyChats.add('k', { chatId: 'rc', identity: 'x', createdAt: 1 })
    const got = await Promise.all([a.readyChats.take('k'), b.readyChats.take('k')])
    t.equal(got.filter(Boolean).length, 1, 'a ready chat is handed out once')
  })

  t.test('an embedder\'s own client is used and never closed', async (t) => {
    const own = new Redis(server.url)
    t.teardown(() => { own.disconnect() })
    const s = new RedisStore({ redis: own, ownsClient: false, namespace: randomUUID(), replicaId: 'E', policy, conversations: { ttlMs: 1000, maxEntries: 10, maxBytes: 10_000 }, resyncMs: 200 })
    await until(() => s.mode() === 'redis')
    await s.close()
    t.equal(await own.ping(), 'PONG')
  })
})

t.test('Redis killed, hung and restarted empty', { skip }, async (t) => {
  const server = await startRedis(t)
  const ns = randomUUID()
  const a = replica(t, server, ns, 'A')
  const b = replica(t, server, ns, 'B')
  const modes: string[] = []
  await until(() => a.mode() === 'redis' && b.mode() === 'redis')
  a.onMode((m) => { modes.push(m) })

  await server.kill()
  const p = await a.identities.pickShared!(cands('x', 'y'), new Set(), Date.now())
  t.ok(p.ok, 'still serving from local state')
  t.equal(a.mode(), 'degraded-local')
  // Learned during the outage, by A only.
  a.identities.record('x', { kind: 'rate_limited', error: '429', retryAfterMs: 120_000 }, false, Date.now())
  t.notOk(await a.conversations.get('h', Date.now()))
  const putAt = Date.now()
  await a.conversations.put('h', { identity: 'y', chatId: 'c', responseId: 'r' }, putAt)
  t.ok(await a.conversations.get('h', Date.now()), 'the local map serves meanwhile')

  await server.restart()
  const back = Date.now()
  await until(() => a.mode() === 'redis' && b.mode() === 'redis', 10_000)
  t.ok(Date.now() - back < 10_000, 'shared again within 10 s')
  await until(async () => {
    const q = await b.identities.pickShared!(cands('x', 'y'), new Set(), Date.now())
    return q.ok && q.id === 'y'
  })
  for (let k = 0; k < 4; k++) {
    const q = await b.identities.pickShared!(cands('x', 'y'), new Set(), Date.now())
    t.same(q.ok && q.id, 'y', 'the cooldown learned during the outage was written back to the empty Redis')
  }
  t.same(modes, ['degraded-local', 'redis'])
  t.same(await b.conversations.get('h', Date.now()), { identity: 'y', chatId: 'c', responseId: 'r' }, 'the conversation remembered during the outage was written back')
  // The conversation moves on through B; A's own copy from the outage must not expire later and
  // announce the chat as unused while the shared entry still continues in it.
  const announced: string[] = []
  a.conversations.subscribe((e) => { announced.push(`${e.ref.chatId}:${e.reason}`) })
  await b.conversations.delete('h')
  await b.conversations.put('h2', { identity: 'y', chatId: 'c', responseId: 'r2' }, Date.now())
  t.ok(Date.now() - putAt > 100, 'the restart took a while')
  // When the outage entry would have expired (but not the one B just wrote).
  t.equal(await a.conversations.sweep(putAt + 60_050), 0, 'no stale local copy left to expire on A')
  t.same(announced, [])

  server.freeze()
  const started = Date.now()
  const hung = await a.conversations.lock('c2', 'h', Date.now())
  t.ok(hung, 'a hung Redis: the local lock serves after the command timeout')
  t.ok(Date.now() - started < 2000, 'no long wait')
  t.equal(a.mode(), 'degraded-local')
  const fast = Date.now()
  await a.conversations.get('nothing', Date.now())
  t.ok(Date.now() - fast < 100, 'while open, no command waits on Redis')
  server.thaw()
  await until(() => a.mode() === 'redis', 10_000)
  t.pass('back after SIGCONT')
})
