/**
 * Chat locks across a Redis outage (a real redis-server frozen with SIGSTOP): a lock command that
 * timed out still lands once Redis goes on, and a release that could not be sent while the breaker
 * was open would leave the chat busy for the lock's TTL (30 min by default). The releases are kept
 * and sent when Redis answers again, so another replica can continue the chat right away.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { DEFAULT_POLICY } from '../src/health.js'
import { createRedis } from '../src/store/redis/connection.js'
import { RedisStore } from '../src/store/redis/index.js'
import { MAX_PENDING_RELEASES, PendingReleases } from '../src/store/redis/lock-releases.js'
import { Keys } from '../src/store/redis/keys.js'
import { withScripts } from '../src/store/redis/scripts.js'
import { startRedis, type RedisServer, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const ref = (chatId: string) => ({ identity: 'i1', chatId, responseId: `r-${chatId}` })

function replica (t: Test, server: RedisServer, ns: string, name: string): RedisStore {
  const s = new RedisStore({
    redis: createRedis(server.url, name, 200), ownsClient: true, namespace: ns, replicaId: name, policy: { ...DEFAULT_POLICY },
    conversations: { ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 },
    // No periodic resync during the test: the first command each replica sends to the frozen Redis is the test's.
    resyncMs: 60_000,
  })
  t.teardown(async () => { await s.close() })
  return s
}

t.test('chat locks do not outlive an outage', { skip }, async (t) => {
  const server = await startRedis(t)
  t.teardown(() => { server.thaw() })
  const ns = randomUUID()
  const a = replica(t, server, ns, 'A')
  const b = replica(t, server, ns, 'B')
  const c = replica(t, server, ns, 'C')
  await until(() => a.mode() === 'redis' && b.mode() === 'redis' && c.mode() === 'redis')
  const now = Date.now()
  await a.conversations.put('k-pointed', ref('c-pointed'), now)
  await a.conversations.put('p-late', { identity: undefined, chatId: '', responseId: 'k-pointed' }, now)
  await a.conversations.put('k-held', ref('c-held'), now)
  await a.conversations.put('k-late', ref('c-late'), now)
  // Taken in Redis before the outage.
  t.same(await a.conversations.begin('k-held', 'h-held', now), { key: 'k-held', ref: ref('c-held'), locked: true })
  t.ok(await a.conversations.lock('c-plain', 'h-plain', now))

  server.freeze()
  // Sent while Redis hangs (the first command of each replica): they time out here, and land when it goes on.
  t.equal(await a.conversations.begin('k-late', 'h-late', now), undefined, 'after the timeout: the local map does not know the entry')
  t.equal(a.mode(), 'degraded-local')
  t.ok(await b.conversations.lock('c-timed-out', 'h-timed-out', now), 'the local lock serves after the timeout')
  t.equal(b.mode(), 'degraded-local')
  await b.conversations.unlock('c-timed-out', 'h-timed-out')
  t.equal(b.conversations.pendingReleases, 1, 'the timed-out lock')
  t.equal(await c.conversations.begin('p-late', 'h-p', now, 'pointer'), undefined, 'a previous_response_id begin that times out')
  t.equal(c.conversations.pendingReleases, 1)
  // Releases while the breaker is open: Redis does not get them now.
  await a.conversations.commit({ put: [{ key: 'k-held-2', ref: ref('c-held') }], unlock: { chatId: 'c-held', holder: 'h-held' } }, now)
  await a.conversations.unlock('c-plain', 'h-plain')
  // A lock taken only locally during the outage needs nothing from Redis.
  t.ok(await a.conversations.lock('c-local', 'h-local', now))
  await a.conversations.unlock('c-local', 'h-local')
  t.equal(a.conversations.pendingReleases, 3, 'the held lock, the plain one and the timed-out begin')

  server.thaw()
  await until(() => a.mode() === 'redis' && b.mode() === 'redis' && c.mode() === 'redis')
  t.equal(a.conversations.pendingReleases + b.conversations.pendingReleases + c.conversations.pendingReleases, 0, 'sent on recovery')
  const later = Date.now()
  t.ok(await b.conversations.lock('c-held', 'other', later), 'a lock taken before the outage was given back')
  t.ok(await b.conversations.lock('c-plain', 'other', later), 'a lock released during the outage was given back')
  t.ok(await a.conversations.lock('c-timed-out', 'other', later), 'a lock command that timed out and landed later was given back')
  t.match(await b.conversations.begin('k-late', 'other', later), { locked: true }, 'a begin that timed out and landed later was given back')
  t.match(await b.conversations.begin('p-late', 'other', later, 'pointer'), { key: 'k-pointed', locked: true }, 'one through a pointer too')
  // Only the holder's: a lock someone else took meanwhile stays.
  await a.conversations.unlock('c-held', 'h-held')
  t.notOk(await a.conversations.lock('c-held', 'third', later), 'the other replica still holds it')
})

t.test('kept releases are bounded; a failed send keeps them', { skip }, async (t) => {
  const server = await startRedis(t)
  const redis = createRedis(server.url, 'bound', 200)
  t.teardown(() => { redis.disconnect() })
  await redis.connect()
  const keys = new Keys(randomUUID())
  const p = new PendingReleases(withScripts(redis), keys)
  for (let k = 0; k < MAX_PENDING_RELEASES + 5; k++) p.keep(`c:chat-${k}`, 'h')
  t.equal(p.size, MAX_PENDING_RELEASES, 'the oldest are dropped')
  p.unsent('never-held', 'h-x')
  t.equal(p.size, MAX_PENDING_RELEASES, 'a lock never taken in Redis is not kept')
  await redis.set(keys.chatLock('chat-999'), 'h')
  await redis.set(keys.chatLock('chat-1000'), 'someone-else')
  await redis.set(keys.chatLock('chat-0'), 'h')
  server.freeze()
  await t.rejects(p.send())
  t.equal(p.size, MAX_PENDING_RELEASES, 'kept for the next try')
  server.thaw()
  await until(async () => await redis.ping().then(() => true, () => false))
  await p.send()
  t.equal(p.size, 0)
  t.equal(await redis.get(keys.chatLock('chat-999')), null, 'released')
  t.equal(await redis.get(keys.chatLock('chat-1000')), 'someone-else', 'another holder\'s lock stays')
  t.equal(await redis.get(keys.chatLock('chat-0')), 'h', 'a dropped release was not sent')
})

t.test('a chat locked on the local side during an outage stays locked for the other replicas after it', { skip }, async (t) => {
  const server = await startRedis(t)
  t.teardown(() => { server.thaw() })
  const ns = randomUUID()
  const a = replica(t, server, ns, 'A')
  const b = replica(t, server, ns, 'B')
  await until(() => a.mode() === 'redis' && b.mode() === 'redis')
  server.freeze()
  // A's first command times out: A serves from its local store.
  t.equal(await a.conversations.begin('k-any', 'h-probe', Date.now()), undefined)
  t.equal(a.mode(), 'degraded-local')
  await a.conversations.put('k1', ref('C'), Date.now())
  const ga = await a.conversations.begin('k1', 'h-a', Date.now())
  t.equal(ga?.locked, true, 'A generates in C on a local lock')
  server.thaw()
  await until(() => a.mode() === 'redis' && b.mode() === 'redis')
  const gb = await b.conversations.begin('k1', 'h-b', Date.now())
  t.same(gb, { key: 'k1', ref: ref('C'), locked: false }, 'B finds the conversation A wrote back, but not the chat free')
  // A's turn ends through Redis now: both locks go.
  await a.conversations.commit({ moved: { key: 'k1', ref: ref('C') }, put: [{ key: 'k2', ref: { ...ref('C'), responseId: 'r-2' } }], unlock: { chatId: 'C', holder: 'h-a' } }, Date.now())
  t.ok(await b.conversations.lock('C', 'h-b2', Date.now()), 'after the commit another replica may generate in C')
  await b.conversations.unlock('C', 'h-b2')
  await until(() => a.mode() === 'redis')
  server.freeze()
  t.equal(await a.conversations.begin('k-other', 'h-probe2', Date.now()), undefined)
  t.equal(a.mode(), 'degraded-local')
  t.ok(await a.conversations.lock('C', 'h-a2', Date.now()), 'the local lock was given back by the commit')
})
