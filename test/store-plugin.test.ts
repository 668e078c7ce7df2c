/**
 * The shared-store plugin in process: two gateways (two apps) on one simulator and one real
 * redis-server share tokens, conversations, uploads and per-key limits; the embedder's own client
 * is used and left open; Redis without STATE_SECRET is refused.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { buildServer } from '../src/build.js'
import type { SimLogEntry } from '../src/simulator/index.js'
import { PNG } from './helpers/media-fixtures.js'
import { startRedis, untilShared } from './helpers/redis.js'
import { harness, postJson, startSim, type Harness } from './helpers/setup.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const COMPLETIONS = '/api/v2/chat/completions'
const completions = (log: SimLogEntry[]): SimLogEntry[] => log.filter((e) => e.path === COMPLETIONS)

async function chat (h: Harness, messages: unknown[], model = 'qwen3-max'): Promise<{ status: number; content: string }> {
  const res = await postJson(`${h.url}/v1/chat/completions`, { model, messages })
  const body = await res.json() as { choices?: Array<{ message: { content: string } }> }
  return { status: res.status, content: body.choices?.[0]?.message.content ?? '' }
}

t.test('a shared store without STATE_SECRET is refused at registration', async (t) => {
  await t.rejects(buildServer({ redisUrl: 'redis://127.0.0.1:9', cookies: [] }, { logger: false }), /Invalid option stateSecret: .*STATE_SECRET/)
})

t.test('two gateways in one process share state through Redis', { skip }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const gateway = { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 'plugin-secret', redisCommandTimeoutMs: 1000, keyLimits: { anonymous: { rpm: 1000 } } }
  const a = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'in-a' } })
  const b = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'in-b' } })
  t.equal(await untilShared(a.app), 'redis')
  t.equal(await untilShared(b.app), 'redis')
  t.match(await (await fetch(`${b.url}/ready`)).json(), { store: 'redis', replica: 'in-b' })
  const auths = sim.log().filter((e) => e.path === '/api/v1/auths/')
  t.equal(auths.length, sim.accounts.length, 'one token fetch per account for both gateways')

  const first = [{ role: 'user', content: 'in-process turn one' }]
  const r1 = await chat(a, first)
  const chat1 = (completions(sim.log()).at(-1)!.body as { chat_id: string }).chat_id
  await chat(b, [...first, { role: 'assistant', content: r1.content }, { role: 'user', content: 'turn two' }])
  t.equal((completions(sim.log()).at(-1)!.body as { chat_id: string }).chat_id, chat1, 'turn 2 on the other gateway continued the chat')

  sim.clearLog()
  const image = [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } }] }]
  t.equal((await chat(a, image, 'qwen3-vl-plus')).status, 200)
  for (let k = 0; k < sim.accounts.length; k++) t.equal((await chat(b, image, 'qwen3-vl-plus')).status, 200)
  const sts = sim.log().filter((e) => e.path.endsWith('/files/getstsToken'))
  t.equal(sts.length, sim.accounts.length, 'one upload per account')

  // Another token for one account, refreshed through A: B takes it from the store.
  const victim = sim.accounts[0]!
  sim.revokeTokens(victim.email)
  sim.clearLog()
  const results = await Promise.all(Array.from({ length: 4 * sim.accounts.length }, async (_, k) => await chat(k % 2 ? a : b, [{ role: 'user', content: `tok ${k}` }])))
  t.ok(results.every((r) => r.status === 200))
  t.equal(sim.log().filter((e) => e.path === '/api/v1/auths/' && e.account === victim.email).length, 1, 'one refresh for both')
})

t.test('per-key limits across two gateways, and local counting while Redis is away', { skip }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const gateway = { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 's', keyLimits: { anonymous: { rpm: 3 } } }
  const a = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'l-a' } })
  const b = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'l-b' } })
  const statuses: number[] = []
  for (let k = 0; k < 4; k++) statuses.push((await chat(k % 2 ? a : b, [{ role: 'user', content: `l ${k}` }])).status)
  t.same(statuses, [200, 200, 200, 429])
  await redis.kill()
  const local: number[] = []
  for (let k = 0; k < 4; k++) local.push((await chat(a, [{ role: 'user', content: `down ${k}` }])).status)
  t.same(local, [200, 200, 200, 429], 'each gateway counts for itself meanwhile')
  t.equal(a.app.qwenStoreInfo.mode(), 'degraded-local')
  const modes: string[] = []
  const off = a.app.qwenStoreInfo.onMode((m) => { modes.push(m) })
  off()
})

t.test("the embedder's own ioredis client: used, never closed", { skip }, async (t) => {
  const redis = await startRedis(t)
  const own = new Redis(redis.url)
  t.teardown(() => { own.disconnect() })
  const sim = await startSim(t)
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: sim.accounts.map((x) => x.cookie), redis: own, stateSecret: 's', redisNamespace: 'emb' }, { logger: false })
  await app.ready()
  t.equal(await untilShared(app), 'redis')
  await app.close()
  t.equal(await own.ping(), 'PONG')
  t.ok(await own.exists('qg:{emb}:alive'), 'state went to the given client')
})

t.test('memory mode: onMode is a no-op subscription', async (t) => {
  const sim = await startSim(t)
  const h = await harness(t, { simulator: sim })
  t.equal(h.app.qwenStoreInfo.mode(), 'memory')
  const off = h.app.qwenStoreInfo.onMode(() => {})
  off()
  t.match(await (await fetch(`${h.url}/metrics`)).text(), /qwen_store_mode\{mode="memory",replica=""\} 1/)
})
