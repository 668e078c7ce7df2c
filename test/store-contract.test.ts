/**
 * One contract for every `QwenStore`: the same cases run against `MemoryStore`, `RedisStore` on a
 * real redis-server, and `RedisStore` whose Redis was killed (the breaker serves from the local
 * parts). Cases that need two replicas, and the outage/recovery cycle, follow for Redis only.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { DEFAULT_POLICY, type PoolPolicy } from '../src/health.js'
import { MemoryStore, type Candidate, type QwenStore } from '../src/store.js'
import { createRedis } from '../src/store/redis/connection.js'
import { RedisStore } from '../src/store/redis/index.js'
import type { ConversationEnded } from '../src/conversations/store.js'
import { startRedis, type RedisServer, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const policy: PoolPolicy = { ...DEFAULT_POLICY }
const limits = { ttlMs: 1000, maxEntries: 3, maxBytes: 1_000_000 }
const cred = { canRefresh: true, tokenValid: true }
const cands = (...ids: string[]): Candidate[] => ids.map((id) => ({ id, cred }))
const ref = (chatId: string) => ({ identity: 'i1', chatId, responseId: `r-${chatId}` })

type Make = (t: Test) => Promise<QwenStore>

function redisStore (t: Test, server: RedisServer, ns: string, replicaId = randomUUID(), resyncMs = 200): RedisStore {
  const s = new RedisStore({
    redis: createRedis(server.url, replicaId, 200), ownsClient: true, namespace: ns, replicaId, policy, conversations: limits, resyncMs, clock: 'caller',
  })
  t.teardown(async () => { await s.close() })
  return s
}

async function shared (s: QwenStore): Promise<void> {
  if (s instanceof RedisStore) await s.flush()
}

async function pick (s: QwenStore, c: Candidate[], now: number, exclude: Set<string> = new Set()) {
  return s.identities.pickShared ? await s.identities.pickShared(c, exclude, now) : s.identities.pick(c, exclude, now)
}

function contract (t: Test, name: string, make: Make): void {
  t.test(`${name}: round robin over the healthy identities`, async (t) => {
    const s = await make(t)
    const got: string[] = []
    for (let k = 0; k < 6; k++) {
      const p = await pick(s, cands('a', 'b', 'c'), 1000)
      if (p.ok) got.push(p.id)
    }
    t.same(got, ['a', 'b', 'c', 'a', 'b', 'c'])
    const ex = await pick(s, cands('a', 'b', 'c'), 1000, new Set(['a', 'b', 'c']))
    t.notOk(ex.ok, 'everything excluded')
  })

  t.test(`${name}: a rate limit keeps the identity out until its time`, async (t) => {
    const s = await make(t)
    const applied = s.identities.record('b', { kind: 'rate_limited', error: '429', retryAfterMs: 60_000 }, false, 1000)
    t.equal(applied.cooldown?.until, 61_000)
    await shared(s)
    for (let k = 0; k < 4; k++) {
      const p = await pick(s, cands('a', 'b'), 2000)
      t.same(p.ok && p.id, 'a')
    }
    const only = await pick(s, cands('b'), 2000)
    t.notOk(only.ok)
    if (!only.ok) t.same(only.verdicts[0]?.e, { kind: 'blocked', reason: 'rate_limited', until: 61_000 })
    const later = await pick(s, cands('b'), 61_001)
    t.same(later.ok && later.id, 'b')
    t.equal(s.identities.health('b').rateLimits, 1)
  })

  t.test(`${name}: down after failures, then exactly one half-open trial`, async (t) => {
    const s = await make(t)
    for (let k = 0; k < 5; k++) s.identities.record('a', { kind: 'failure', error: '500' }, false, 1000)
    await shared(s)
    t.equal(s.identities.health('a').state, 'down')
    t.notOk((await pick(s, cands('a'), 2000)).ok, 'cooling down')
    const after = 1000 + policy.downCooldownMs + 1
    const trial = await pick(s, cands('a'), after)
    t.same(trial, { ok: true, id: 'a', trial: true })
    t.notOk((await pick(s, cands('a'), after)).ok, 'one trial at a time')
    s.identities.record('a', { kind: 'success' }, true, after)
    await shared(s)
    t.equal(s.identities.health('a').state, 'healthy')
    t.same(await pick(s, cands('a'), after), { ok: true, id: 'a', trial: false })
  })

  t.test(`${name}: reset, annotate, disable, subscribe, snapshot`, async (t) => {
    const s = await make(t)
    const changes: string[] = []
    const off = s.identities.subscribe((c) => { changes.push(c.id) })
    s.identities.record('a', { kind: 'challenge', error: 'captcha' }, false, 1000)
    s.identities.annotate('a', { authRefused: true, error: 'refused' }, 1000)
    s.identities.setDisabled('b', true)
    await shared(s)
    t.equal(s.identities.health('a').authRefused, true)
    t.equal(s.identities.health('b').disabled, true)
    t.equal(s.identities.reset('a', 'all'), undefined, 'healthy already: no transition')
    await shared(s)
    t.equal(s.identities.health('a').challengedUntil, undefined)
    t.equal(s.identities.health('a').authRefused, false)
    t.ok(changes.includes('a') && changes.includes('b'))
    off()
    s.identities.put('c', { ...s.identities.health('c'), failures: 2, lastError: 'x' })
    await shared(s)
    t.equal(s.identities.snapshot().c?.failures, 2)
  })

  t.test(`${name}: conversations expire, are evicted, locked and abandoned`, async (t) => {
    const s = await make(t)
    const ended: ConversationEnded[] = []
    s.conversations.subscribe((e) => { ended.push(e) })
    await s.conversations.put('k1', ref('c1'), 0)
    t.same(await s.conversations.get('k1', 999), ref('c1'))
    t.ok(await s.conversations.holds('c1', 999))
    t.equal(await s.conversations.get('k1', 1000), undefined)
    t.same(ended.map((e) => [e.key, e.reason]), [['k1', 'expired']])
    for (let i = 2; i <= 5; i++) await s.conversations.put(`k${i}`, ref(`c${i}`), 2000 + i)
    t.same(ended.slice(1).map((e) => [e.key, e.reason]), [['k2', 'evicted']], 'over the cap: the oldest')
    await s.conversations.put('k5', ref('c9'), 2010)
    t.same(ended.slice(2).map((e) => [e.ref.chatId, e.reason]), [['c5', 'evicted']], 'same key, another chat')
    await s.conversations.delete('k4')
    t.equal(await s.conversations.get('k4', 2010), undefined)
    t.equal(ended.length, 3, 'a moved-forward entry is not announced')
    await s.conversations.delete('k3', 'abandoned')
    t.same(ended.slice(3).map((e) => [e.key, e.reason]), [['k3', 'abandoned']])
    t.notOk(await s.conversations.holds('c3', 2010))
    await s.conversations.delete('missing', 'abandoned')
    t.equal(await s.conversations.sweep(2500), 0)
    t.equal(await s.conversations.sweep(3100), 1, 'k5 expired')
    t.ok(await s.conversations.lock('c1', 'h1', 0))
    t.ok(await s.conversations.lock('c1', 'h1', 0), 'the holder again')
    t.notOk(await s.conversations.lock('c1', 'h2', 0))
    await s.conversations.unlock('c1', 'h2')
    t.notOk(await s.conversations.lock('c1', 'h2', 0), 'only the holder unlocks')
    await s.conversations.unlock('c1', 'h1')
    t.ok(await s.conversations.lock('c1', 'h2', 0))
  })

  t.test(`${name}: a turn in one step at each end: begin, commit`, async (t) => {
    const s = await make(t)
    const ended: ConversationEnded[] = []
    s.conversations.subscribe((e) => { ended.push(e) })
    const c = s.conversations
    t.equal(await c.begin('none', 'h1', 0), undefined, 'nothing to continue')
    await c.put('k1', ref('c1'), 0)
    await c.put('p1', { identity: undefined, chatId: '', responseId: 'k1' }, 0)
    t.same(await c.begin('k1', 'h1', 10), { key: 'k1', ref: ref('c1'), locked: true })
    t.same(await c.begin('k1', 'h2', 10), { key: 'k1', ref: ref('c1'), locked: false }, 'the chat is busy')
    t.same(await c.begin('p1', 'h2', 10, 'pointer'), { key: 'k1', ref: ref('c1'), locked: false }, 'through the pointer: the same entry, busy')
    t.same(await c.begin('p1', 'h1', 10, 'pointer'), { key: 'k1', ref: ref('c1'), locked: true }, 'the holder again')
    t.equal(await c.begin('p-none', 'h2', 10, 'pointer'), undefined)
    t.equal(await c.begin('k1', 'h2', 10, 'pointer'), undefined, 'an entry is no pointer (its responseId names no entry)')
    t.notOk(await c.lock('c1', 'h2', 10), 'a missing entry takes no lock')
    await c.commit({
      moved: { key: 'k1', ref: ref('c1') },
      put: [{ key: 'k2', ref: { ...ref('c1'), responseId: 'r2' } }, { key: 'p2', ref: { identity: undefined, chatId: '', responseId: 'k2' } }],
      unlock: { chatId: 'c1', holder: 'h1' },
    }, 20)
    t.equal(await c.get('k1', 20), undefined, 'the moved-on entry is gone')
    t.ok(await c.holds('c1', 20))
    t.same(await c.begin('p2', 'h2', 20, 'pointer'), { key: 'k2', ref: { ...ref('c1'), responseId: 'r2' }, locked: true }, 'the lock was given back; the new pointer leads to the new entry')
    t.equal(await c.begin('p1', 'h2', 20, 'pointer'), undefined, 'the old pointer leads nowhere')
    t.same(ended, [], 'moving on announces nothing')
    // Over the cap (3 entries): the oldest (p1) goes, announced.
    await c.put('k3', ref('c3'), 30)
    t.same(ended.map((e) => [e.key, e.reason]), [['p1', 'evicted']])
    // A moved entry that no longer names the continued parent stays; a put over another chat's entry evicts it.
    await c.commit({ moved: { key: 'k2', ref: ref('c1') }, put: [{ key: 'k3', ref: ref('c4') }], unlock: { chatId: 'c1', holder: 'h1' } }, 30)
    t.ok(await c.get('k2', 30), 'not the expected parent: kept')
    t.same(ended.slice(1).map((e) => [e.key, e.ref.chatId, e.reason]), [['k3', 'c3', 'evicted']])
    t.notOk(await c.lock('c1', 'h3', 30), 'another holder\'s lock is not released')
    // Each put of a commit keeps the cap: the oldest go, announced.
    await c.commit({ put: [{ key: 'k5', ref: ref('c5') }, { key: 'p5', ref: { identity: undefined, chatId: '', responseId: 'k5' } }] }, 40)
    t.same(ended.slice(2).map((e) => [e.key, e.reason]), [['k2', 'evicted'], ['p2', 'evicted']])
    // Expiry: begin drops and announces an expired entry, and through a pointer the expired pointer too.
    const before = ended.length
    t.equal(await c.begin('k5', 'h1', 40 + 1000), undefined)
    t.equal(await c.begin('p5', 'h1', 40 + 1000, 'pointer'), undefined)
    t.same(ended.slice(before).map((e) => [e.key, e.reason]), [['k5', 'expired'], ['p5', 'expired']])
    await c.commit({ put: [{ key: 'k6', ref: ref('c6') }, { key: 'p6', ref: { identity: undefined, chatId: '', responseId: 'k6' } }] }, 2000)
    t.equal(await c.begin('p6', 'h1', 3000, 'pointer'), undefined, 'an expired pointer')
    t.same(ended.slice(-1).map((e) => [e.key, e.reason]), [['p6', 'expired']])
  })

  t.test(`${name}: ready chats, request log, accounts`, async (t) => {
    const s = await make(t)
    const chat = (id: string) => ({ chatId: id, identity: 'i1', createdAt: 5 })
    t.equal(await s.readyChats.take('k'), undefined)
    await s.readyChats.add('k', chat('r1'))
    await s.readyChats.add('k', chat('r2'))
    await s.readyChats.add('j', chat('r3'))
    t.equal(await s.readyChats.count('k'), 2)
    t.ok(await s.readyChats.holds('r2'))
    t.same(await s.readyChats.take('k'), chat('r1'))
    t.notOk(await s.readyChats.holds('r1'))
    t.same(await s.readyChats.drain('k'), [{ key: 'k', chat: chat('r2') }])
    t.same(await s.readyChats.drain(), [{ key: 'j', chat: chat('r3') }])
    t.equal(await s.readyChats.count('j'), 0)
    const rec = (n: number) => ({ at: n, requestId: `q${n}`, key: 'k', route: '/v1/chat/completions', model: 'm', stream: false, status: 200, ttftMs: 1, durationMs: 2, tokensIn: 1, tokensOut: 1, identity: 'i1', tried: [], error: undefined, replica: 'r' })
    for (let n = 1; n <= 3; n++) await s.requests.add(rec(n))
    t.same((await s.requests.recent(2)).map((r) => r.at), [3, 2])
    await s.accounts.put({ id: 'a1', sealed: 'blob', addedAt: 1 })
    t.same(await s.accounts.list(), [{ id: 'a1', sealed: 'blob', addedAt: 1 }])
    t.ok(await s.accounts.delete('a1'))
    t.notOk(await s.accounts.delete('a1'))
  })
}

contract(t, 'memory', async () => new MemoryStore(policy, limits))

t.test('redis', { skip }, async (t) => {
  const server = await startRedis(t)
  contract(t, 'redis', async (t) => {
    const s = redisStore(t, server, randomUUID())
    await until(() => s.mode() === 'redis')
    return s
  })
})

t.test('resilient (Redis killed)', { skip }, async (t) => {
  const server = await startRedis(t)
  contract(t, 'redis killed', async (t) => {
    if (server.url) await server.restart()
    const s = redisStore(t, server, randomUUID())
    await until(() => s.mode() === 'redis')
    await server.kill()
    return s
  })
})
