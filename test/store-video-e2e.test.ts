/**
 * `/v1/videos` across two gateways (two apps in one process) sharing one simulator and one real
 * redis-server: a job created through A is retrieved, polled and downloaded through B; once B saw
 * it completed, A answers completed without asking the upstream again; another caller's job is a
 * 404 on both (API keys in pool mode, credentials in client mode); nothing in Redis holds the
 * prompt text.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis, untilShared } from './helpers/redis.js'
import { harness, startSim } from './helpers/setup.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const PROMPT = 'a lighthouse keeper painting seagulls at dawn'
const STATUS = '/api/v1/tasks/status/'

interface Video { id: string; status: string; prompt: string; progress: number }

async function call (url: string, auth: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, body === undefined
    ? { headers: { authorization: `Bearer ${auth}` } }
    : { method: 'POST', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}

async function content (url: string, auth: string): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${auth}` } })
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) }
}

/** Every value under the namespace, whatever its type, as text. */
async function everything (redis: Redis, ns: string): Promise<string[]> {
  const out: string[] = []
  for (const key of await redis.keys(`qg:{${ns}}:*`)) {
    const type = await redis.type(key)
    if (type === 'string') out.push(key, (await redis.get(key))!)
    else if (type === 'hash') out.push(key, JSON.stringify(await redis.hgetall(key)))
    else if (type === 'list') out.push(key, ...await redis.lrange(key, 0, -1))
    else if (type === 'set') out.push(key, ...await redis.smembers(key))
    else if (type === 'zset') out.push(key, ...await redis.zrange(key, '0', '-1'))
    else out.push(key, `<${type}>`)
  }
  return out
}

t.test('pool mode: created on A, polled and downloaded on B; completed on both; another key\'s job is 404 on both', { skip }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t, { demoAccounts: 2, videoMs: 300 })
  const ns = randomUUID()
  const gateway = { redisUrl: redis.url, redisNamespace: ns, stateSecret: 'video-e2e-secret', redisCommandTimeoutMs: 1000, apiKey: 'alice:sk-alice-0123456789|||bob:sk-bob-0123456789' }
  const a = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'v-a' } })
  const b = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'v-b' } })
  t.same([await untilShared(a.app), await untilShared(b.app)], ['redis', 'redis'])
  const ALICE = 'sk-alice-0123456789'
  const BOB = 'sk-bob-0123456789'

  const created = await call(`${a.url}/v1/videos`, ALICE, { prompt: PROMPT, seconds: '4' })
  t.equal(created.status, 200)
  const id = (created.body as Video).id
  t.match(created.body, { status: 'in_progress', prompt: PROMPT })

  for (const h of [a, b]) {
    const theirs = await call(`${h.url}/v1/videos/${id}`, BOB)
    t.equal(theirs.status, 404, 'another key: not found')
    t.equal(theirs.body.error.code, 'video_not_found')
    t.equal((await content(`${h.url}/v1/videos/${id}/content`, BOB)).status, 404)
  }

  const first = await call(`${b.url}/v1/videos/${id}`, ALICE)
  t.equal(first.status, 200, 'B knows the job A created')
  t.match(first.body, { id, prompt: PROMPT })
  t.equal((await content(`${b.url}/v1/videos/${id}/content`, ALICE)).status, 400, 'not ready yet')

  // Both replicas poll at once until it is done: the job never goes back.
  let seen: Video[] = []
  for (let i = 0; i < 100 && !seen.some((v) => v.status === 'completed'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 30))
    seen = await Promise.all([a, b, b].map(async (h) => (await call(`${h.url}/v1/videos/${id}`, ALICE)).body as Video))
  }
  t.ok(seen.some((v) => v.status === 'completed'), 'completed')
  const creator = sim.log().find((e) => e.path === '/api/v2/chat/completions')!.account
  const statusChecks = sim.log().filter((e) => e.path.startsWith(STATUS))
  const polls = statusChecks.length
  t.ok(polls > 0 && statusChecks.every((e) => e.account === creator), 'every status check, on either replica, with the account that created the task')
  for (const h of [a, b]) t.match((await call(`${h.url}/v1/videos/${id}`, ALICE)).body, { status: 'completed', progress: 100, prompt: PROMPT })
  t.equal(sim.log().filter((e) => e.path.startsWith(STATUS)).length, polls, 'a completed job is not polled again, on either replica')

  for (const h of [b, a]) {
    const mp4 = await content(`${h.url}/v1/videos/${id}/content`, ALICE)
    t.equal(mp4.status, 200)
    t.equal(mp4.bytes.toString('latin1', 4, 8), 'ftyp', 'the video, through either replica')
  }

  const probe = new Redis(redis.url)
  t.teardown(() => { probe.disconnect() })
  const stored = await everything(probe, ns)
  t.ok(stored.some((s) => s.endsWith(`:video:${id}`)), 'the job is in Redis')
  t.notOk(stored.some((s) => s.includes('lighthouse') || s.includes('seagulls')), 'no prompt text anywhere in Redis')
})

t.test('client mode: the caller\'s own credentials poll on the other replica; another caller gets 404 on both', { skip }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t, { demoAccounts: 2, videoMs: 100 })
  const gateway = { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 'video-e2e-secret', redisCommandTimeoutMs: 1000, serverMode: false, cookies: [] }
  const a = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'c-a' } })
  const b = await harness(t, { simulator: sim, gateway: { ...gateway, replicaId: 'c-b' } })
  t.same([await untilShared(a.app), await untilShared(b.app)], ['redis', 'redis'])
  const [x, y] = sim.accounts
  const X = `;${x!.cookie}`
  const Y = `;${y!.cookie}`

  const created = await call(`${a.url}/v1/videos`, X, { prompt: PROMPT })
  t.equal(created.status, 200)
  const id = (created.body as Video).id
  for (const h of [a, b]) t.equal((await call(`${h.url}/v1/videos/${id}`, Y)).status, 404, 'another caller: not found')

  let v = (await call(`${b.url}/v1/videos/${id}`, X)).body as Video
  for (let i = 0; i < 100 && v.status !== 'completed'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 30))
    v = (await call(`${b.url}/v1/videos/${id}`, X)).body as Video
  }
  t.equal(v.status, 'completed', 'polled on B with the caller\'s own credentials')
  const polls = sim.log().filter((e) => e.path.startsWith(STATUS))
  t.ok(polls.length > 0 && polls.every((e) => e.account === x!.email), 'every status check as the caller')
  t.match((await call(`${a.url}/v1/videos/${id}`, X)).body, { status: 'completed' }, 'completed on A too')
  t.equal((await content(`${a.url}/v1/videos/${id}/content`, X)).bytes.toString('latin1', 4, 8), 'ftyp')
})
