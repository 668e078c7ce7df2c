/**
 * Redis round trips per chat request, counted for real on the server (`MONITOR`, see
 * `bench/round-trips.ts`): a gateway with `REDIS_URL`, the simulator, sequential requests. One-shot
 * requests, a continued conversation's second turn and a `previous_response_id` turn each cost an
 * exact, small number of round trips (the look-up and chat lock in one script, the end of the turn in
 * another), and the request log is written in batches, not per request. Adding a round trip fails here.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { RoundTripCounter, scriptNames } from '../bench/round-trips.js'
import { withScripts } from '../src/store/redis/scripts.js'
import { harness, postJson, type Harness } from './helpers/setup.js'
import { startRedis } from './helpers/redis.js'
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

const settle = async (): Promise<void> => { await new Promise((r) => setTimeout(r, 400)) }

t.test('round trips per chat request', { skip }, async (t) => {
  const redis = await startRedis(t)
  const h = await harness(t, { gateway: { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 'rtt-secret', replicaId: 'rtt' } })
  t.equal(h.app.qwenStoreInfo.mode(), 'redis')
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
