/**
 * A ready chat whose take timed out on the replica but ran in Redis later is not leaked: takes are
 * noted until acknowledged (on the next take, alone shortly after, on recovery, at close), and what
 * nobody acknowledged comes back from `orphans()` for deletion. Real redis-server, frozen (SIGSTOP).
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { DEFAULT_POLICY } from '../src/health.js'
import { createRedis } from '../src/store/redis/connection.js'
import { RedisStore, orphanAge } from '../src/store/redis/index.js'
import { startRedis, type RedisServer, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')

function replica (t: Test, server: RedisServer, ns: string, name: string, o: { ackMs?: number; clock?: 'caller'; now?: () => number } = {}): RedisStore {
  const s = new RedisStore({
    redis: createRedis(server.url, name, 200), ownsClient: true, namespace: ns, replicaId: name, policy: { ...DEFAULT_POLICY },
    conversations: { ttlMs: 60_000, maxEntries: 100, maxBytes: 1_000_000 }, resyncMs: 200, readyAckDelayMs: o.ackMs, clock: o.clock, now: o.now,
  })
  t.teardown(async () => { await s.close() })
  return s
}

const chat = (chatId: string): { chatId: string; identity: string; createdAt: number } => ({ chatId, identity: 'x', createdAt: 1 })

t.test('ready chats handed out across an outage', { skip }, async (t) => {
  const server = await startRedis(t)
  const fix = new Redis(server.url)
  t.teardown(() => { fix.disconnect() })

  t.test('a take that timed out but ran in Redis later is an orphan, handed out once for deletion', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A')
    const b = replica(t, server, ns, 'B')
    await until(() => a.mode() === 'redis' && b.mode() === 'redis')
    await b.readyChats.add('k', chat('c1'))
    server.freeze()
    t.equal(await a.readyChats.take('k'), undefined, 'timed out: the request creates its chat inline')
    t.equal(a.mode(), 'degraded-local')
    t.same(await a.readyChats.orphans(0), [], 'none while the breaker is open')
    server.thaw()
    // B's periodic resync may have timed out too meanwhile.
    await until(() => a.mode() === 'redis' && b.mode() === 'redis', 10_000)
    t.equal(await fix.llen(a.keys.ready('k')), 0, 'the take ran in Redis after all')
    t.notOk(await b.readyChats.holds('c1'))
    t.same(await b.readyChats.orphans(60_000), [], 'not before the orphan age')
    t.same(await b.readyChats.orphans(0), [chat('c1')], 'found, for the keeper to delete upstream')
    t.same(await a.readyChats.orphans(0), [], 'once')
  })

  t.test('a take its taker received is acknowledged: on the next take, or alone shortly after', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A', { ackMs: 50 })
    await until(() => a.mode() === 'redis')
    await a.readyChats.add('k', chat('c2'))
    await a.readyChats.add('k', chat('c3'))
    t.same(await a.readyChats.take('k'), chat('c2'))
    t.equal(await fix.zcard(a.keys.readyTaken), 1, 'noted until acknowledged')
    t.same(await a.readyChats.take('k'), chat('c3'))
    t.same(await fix.zrange(a.keys.readyTaken, '0', '-1'), ['c3'], 'c2\'s acknowledgement rode on the next take')
    await until(async () => await fix.zcard(a.keys.readyTaken) === 0 && await fix.hlen(a.keys.readyTakenData) === 0, 2000)
    t.same(await a.readyChats.orphans(0), [], 'nothing to delete')
  })

  t.test('an acknowledgement held back by an outage goes out on recovery, before the breaker closes', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A', { ackMs: 60_000 })
    await until(() => a.mode() === 'redis')
    await a.readyChats.add('k', chat('c4'))
    t.same(await a.readyChats.take('k'), chat('c4'))
    server.freeze()
    await a.conversations.get('nothing', Date.now())
    t.equal(a.mode(), 'degraded-local')
    server.thaw()
    await until(() => a.mode() === 'redis', 10_000)
    t.equal(await fix.zcard(a.keys.readyTaken), 0, 'acknowledged at recovery, not after the minute')
  })

  t.test('an acknowledgement that timed out opens the breaker, and goes out again on recovery', async (t) => {
    const ns = randomUUID()
    const a = replica(t, server, ns, 'A', { ackMs: 20 })
    await until(() => a.mode() === 'redis')
    await a.readyChats.add('k', chat('c8'))
    t.same(await a.readyChats.take('k'), chat('c8'))
    server.freeze()
    await until(() => a.mode() === 'degraded-local', 3000)
    t.pass('the lone acknowledgement timed out')
    server.thaw()
    await until(() => a.mode() === 'redis', 10_000)
    t.equal(await fix.zcard(a.keys.readyTaken), 0)
    t.same(await a.readyChats.orphans(0), [])
  })

  t.test('close sends what is pending; a chat a conversation continues in is spared', async (t) => {
    const ns = randomUUID()
    let now = 1_000_000
    const a = replica(t, server, ns, 'A', { ackMs: 60_000, clock: 'caller', now: () => now })
    const b = replica(t, server, ns, 'B', { clock: 'caller', now: () => now })
    await until(() => a.mode() === 'redis' && b.mode() === 'redis')
    await a.readyChats.add('k', chat('c5'))
    t.same(await a.readyChats.take('k'), chat('c5'))
    await a.close()
    t.equal(await fix.zcard(b.keys.readyTaken), 0, 'acknowledged at close')
    // Two takes nobody acknowledged (by Redis's clock), one of them now a conversation's chat.
    await fix.zadd(b.keys.readyTaken, '500', 'c6', '600', 'c7')
    await fix.hset(b.keys.readyTakenData, 'c6', JSON.stringify(chat('c6')), 'c7', JSON.stringify(chat('c7')))
    await b.conversations.put('h', { identity: 'x', chatId: 'c7', responseId: 'r' }, now)
    now = 1000
    t.same(await b.readyChats.orphans(600), [], 'by the caller\'s clock: not old enough yet')
    now = 1100
    t.same(await b.readyChats.orphans(400), [chat('c6')], 'the conversation\'s chat is not deleted')
    t.equal(await fix.zcard(b.keys.readyTaken), 0, 'its record is dropped all the same')
  })
})

t.test('the default orphan age is never shorter than a conversation can live', async (t) => {
  t.equal(orphanAge(3_600_000), 3_600_000, 'a conversation started in the chat may go on for its TTL while its replica is cut off')
  t.equal(orphanAge(60_000), 300_000, 'at least 5 minutes')
})
