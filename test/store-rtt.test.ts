/**
 * Redis round trips per chat request, counted for real on the server (`MONITOR`, see
 * `bench/round-trips.ts`): a gateway with `REDIS_URL`, the simulator, sequential requests. One-shot
 * requests, a continued conversation's second turn and a `previous_response_id` turn each cost an
 * exact, small number of round trips (the look-up and chat lock in one script, the end of the turn in
 * another), and the request log is written in batches, not per request. Adding a round trip fails here.
 */
import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { parseMonitorLine, RoundTripCounter, scriptNames } from '../bench/round-trips.js'
import { MemoryRequestLog } from '../src/admin/request-log.js'
import { DEFAULT_POLICY } from '../src/health.js'
import { createRedis } from '../src/store/redis/connection.js'
import { RedisStore } from '../src/store/redis/index.js'
import { RedisRequestLog } from '../src/store/redis/request-log.js'
import { withScripts } from '../src/store/redis/scripts.js'
import { harness, postJson, type Harness } from './helpers/setup.js'
import { startRedis, untilShared, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const N = 6

async function chat (h: Harness, messages: unknown[]): Promise<string> {
  const res = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages })
  const body = await res.json() as { choices?: Array<{ message: { content: string } }> }
  if (res.status !== 200) throw new Error(`status ${res.status}: ${JSON.stringify(body)}`)
  return body.choices![0]!.message.content
}

async function respond (h: Harness, body: object): Promise<string> {
  const res = await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', ...body })
  const json = await res.json() as { id: string }
  if (res.status !== 200) throw new Error(`status ${res.status}: ${JSON.stringify(json)}`)
  return json.id
}

async function createRedisFor (t: { teardown: (fn: () => unknown) => void }, url: string): Promise<Redis> {
  const r = createRedis(url, 'log-client', 200)
  t.teardown(() => { r.disconnect() })
  await r.connect()
  return r
}

const settle = async (): Promise<void> => { await new Promise((r) => setTimeout(r, 400)) }

t.test('round trips per chat request', { skip }, async (t) => {
  const redis = await startRedis(t)
  const h = await harness(t, { gateway: { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 'rtt-secret', replicaId: 'rtt', redisCommandTimeoutMs: 1000 } })
  t.equal(await untilShared(h.app), 'redis')
  const names = new Redis(redis.url, { lazyConnect: true })
  t.teardown(() => { names.disconnect() })
  const counter = await RoundTripCounter.start(redis.port, scriptNames(withScripts(names).redis))
  t.teardown(() => { counter.stop() })
  // Warm-up: scripts loaded, one of each kind of request.
  const warm = [{ role: 'user', content: 'warm up' }]
  await chat(h, [...warm, { role: 'assistant', content: await chat(h, warm) }, { role: 'user', content: 'again' }])
  await respond(h, { input: 'go on', previous_response_id: await respond(h, { input: 'warm up' }) })
  await settle()

  t.test('one-shot: pick the account, remember the conversation', async (t) => {
    counter.reset()
    const started = Date.now()
    for (let k = 0; k < N; k++) await chat(h, [{ role: 'user', content: `one-shot ${k}` }])
    const elapsed = Date.now() - started
    await settle()
    t.same(counter.breakdown(), { qgPick: N, qgConvCommit: N }, `${counter.count('request') / N} round trips per request`)
    const batches = counter.count('request-log')
    t.ok(batches >= 1 && batches <= Math.ceil(elapsed / 250) + 1 && batches < N, `request log: ${batches} batched writes for ${N} requests in ${elapsed} ms`)
  })

  t.test('a continued conversation\'s second turn: the account check, look-up and lock in one step, the end in another', async (t) => {
    const firsts: Array<{ q: unknown[]; a: string }> = []
    for (let k = 0; k < N; k++) {
      const q = [{ role: 'user', content: `conversation ${k}` }]
      firsts.push({ q, a: await chat(h, q) })
    }
    await settle()
    counter.reset()
    for (const { q, a } of firsts) await chat(h, [...q, { role: 'assistant', content: a }, { role: 'user', content: 'and then?' }])
    await settle()
    // The pick checks that the chat's account can serve (src/turn/lease.ts).
    t.same(counter.breakdown(), { qgPick: N, qgConvBegin: N, qgConvCommit: N }, `${counter.count('request') / N} round trips per second turn`)
    const continued = h.sim.log().filter((e) => e.path.includes('/chat/completions')).slice(-N)
    t.ok(continued.every((e) => typeof (e.body as { parent_id?: unknown }).parent_id === 'string'), 'the second turns continued their chats')
  })

  t.test('a previous_response_id turn: the account check, the pointer, look-up and lock in one step, the end', async (t) => {
    const ids: string[] = []
    for (let k = 0; k < N; k++) ids.push(await respond(h, { input: `responses ${k}` }))
    await settle()
    counter.reset()
    for (const id of ids) await respond(h, { input: 'go on', previous_response_id: id })
    await settle()
    t.same(counter.breakdown(), { qgPick: N, qgConvBegin: N, qgConvCommit: N }, `${counter.count('request') / N} round trips per previous_response_id turn`)
  })
})

t.test('the request log is written in batches, never per request', { skip }, async (t) => {
  const server = await startRedis(t)
  const store = new RedisStore({
    redis: createRedis(server.url, 'log', 500), ownsClient: true, namespace: randomUUID(), replicaId: 'log', policy: { ...DEFAULT_POLICY },
    conversations: { ttlMs: 60_000, maxEntries: 10, maxBytes: 100_000 }, resyncMs: 60_000,
  })
  t.teardown(async () => { await store.close() })
  await until(() => store.mode() === 'redis')
  const raw = new Redis(server.url)
  t.teardown(() => { raw.disconnect() })
  const rec = (n: number) => ({ at: n, requestId: `q${n}`, key: 'k', route: '/v1/chat/completions', model: 'm', stream: false, status: 200, ttftMs: 1, durationMs: 2, tokensIn: 1, tokensOut: 1, identity: 'i1', tried: [], error: undefined, replica: 'log' })
  const log = new RedisRequestLog(withScripts(raw), store.keys, store.breaker, new MemoryRequestLog(), 3, 100)
  for (let n = 1; n <= 4; n++) await log.add(rec(n))
  t.equal(await raw.llen(store.keys.requests), 0, 'nothing written yet')
  await until(async () => await raw.llen(store.keys.requests) > 0)
  t.same((await raw.lrange(store.keys.requests, 0, -1)).map((r) => (JSON.parse(r) as { at: number }).at), [4, 3, 2], 'one batch, newest first, capped')
  t.same(await log.recent(0), [])
  await log.add(rec(5))
  t.same((await log.recent(2)).map((r) => r.at), [5, 4], 'a read flushes this replica\'s batch first')
  await log.add(rec(6))
  await log.close()
  await log.add(rec(7))
  t.same((await raw.lrange(store.keys.requests, 0, 0)).map((r) => (JSON.parse(r) as { at: number }).at), [6], 'flushed on close; later records stay local')
  // Redis hung: the batch's write fails and its records are kept locally.
  const hung = new RedisRequestLog(withScripts(await createRedisFor(t, server.url)), store.keys, store.breaker, new MemoryRequestLog(), 3, 10_000)
  await hung.add(rec(8))
  server.freeze()
  await hung.flush()
  server.thaw()
  t.equal(store.breaker.open, true, 'the failed write opened the breaker')
  t.same((await hung.recent(5)).map((r) => r.at), [8], 'served from the local log meanwhile')
})

t.test('MONITOR lines: scripts by name, transactions as one trip, background apart', { skip }, async (t) => {
  t.same(parseMonitorLine('1.5 [0 127.0.0.1:5] "GET" "a\\"b"'), { client: '127.0.0.1:5', cmd: 'get', args: ['a"b'] })
  t.equal(parseMonitorLine('+OK'), undefined)
  const server = await startRedis(t)
  const r = new Redis(server.url)
  t.teardown(() => { r.disconnect() })
  const lua = 'return 1'
  const counter = await RoundTripCounter.start(server.port, new Map([[createHash('sha1').update(lua).digest('hex'), 'one']]))
  t.teardown(() => { counter.stop() })
  await r.get('a')
  await r.eval(lua, 0)
  await r.eval('return 2', 0)
  await r.evalsha(createHash('sha1').update(lua).digest('hex'), 0)
  await r.multi().get('a').set('b', '1').exec()
  await r.multi().lpush('x:reqlog', '1').ltrim('x:reqlog', 0, 1).exec()
  await r.ping()
  await r.set('x:alive', '1', 'NX')
  await r.hgetall('x:pool:h')
  await r.hvals('x:accounts')
  await r.zrangebyscore('x:conv-idx', 0, 1)
  await r.zremrangebyscore('x:conv-chats', 0, 1)
  await r.zrangebyscore('x:other', 0, 1)
  await until(() => counter.trips.some((x) => x.what === 'zrangebyscore' && x.kind === 'request'))
  t.same(counter.breakdown(), { get: 1, one: 2, eval: 1, multi: 1, zrangebyscore: 1 })
  t.equal(counter.count('request-log'), 1)
  // (ioredis's own `info` ready check may be in there too)
  t.match(counter.breakdown('background'), { ping: 1, set: 1, hgetall: 1, hvals: 1, zrangebyscore: 1, zremrangebyscore: 1 })
})
