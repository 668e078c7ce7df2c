/**
 * The video job store's contract: the same cases against `MemoryVideoJobStore`, the shared store
 * on a real redis-server (`qwenStore.videoJobs.open`) and that shared store with Redis killed (the
 * breaker serves from the local memory store). Then, Redis only: two replicas see one job, jobs
 * are sealed (no prompt, URL, proxy or owner hash in Redis), a replica with another STATE_SECRET
 * sees nothing, concurrent writes never take a finished job back, and a job created during an
 * outage is still found, and shared, after it.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { DEFAULT_POLICY } from '../src/health.js'
import { MemoryVideoJobStore, jobRank, type VideoJob, type VideoJobStore } from '../src/media/video-jobs.js'
import { TokenCipher } from '../src/state.js'
import { createRedis } from '../src/store/redis/connection.js'
import { RedisStore } from '../src/store/redis/index.js'
import { startRedis, type RedisServer, until } from './helpers/redis.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const TTL = 400
const PROMPT = 'a secret prompt about lighthouses'

function job (id: string, change: Partial<VideoJob> = {}): VideoJob {
  return {
    id, model: 'qwen3-max', prompt: PROMPT, size: '1280x720', seconds: '4', createdAt: 1, completedAt: null, status: 'in_progress', progress: 0, error: null,
    ref: { taskId: `task-${id}`, identityId: 'acc1', proxyUrl: 'http://user:proxy-pass@127.0.0.1:9', identity: 'acc1@example.com' }, owner: 'owner-hash-0123', ...change,
  }
}

function replica (t: Test, server: RedisServer, ns: string, secret = 'video-secret'): { store: RedisStore; jobs: VideoJobStore; local: MemoryVideoJobStore } {
  const replicaId = randomUUID()
  const store = new RedisStore({
    redis: createRedis(server.url, replicaId, 200), ownsClient: true, namespace: ns, replicaId, policy: DEFAULT_POLICY,
    conversations: { ttlMs: 1000, maxEntries: 10, maxBytes: 1_000_000 }, resyncMs: 200,
  })
  t.teardown(async () => { await store.close() })
  const local = new MemoryVideoJobStore({ ttlMs: TTL, maxEntries: 100, now: Date.now })
  return { store, local, jobs: store.videoJobs.open({ sealer: new TokenCipher(secret, `qwen-gateway video jobs ${ns}`), local, ttlMs: TTL }) }
}

type Make = (t: Test) => Promise<VideoJobStore>

/**
 * A job nobody has: not found, or with the shared store unreachable (`away`) a retryable 503, since
 * another replica may have it.
 */
async function missing (t: Test, s: VideoJobStore, id: string, away: boolean): Promise<void> {
  if (away) await t.rejects(s.get(id), { statusCode: 503, code: 'store_unavailable' }, `${id}: unknown here, maybe elsewhere`)
  else t.equal(await s.get(id), undefined, `${id}: not found`)
}

function contract (t: Test, name: string, make: Make, away = false): void {
  t.test(`${name}: set and get`, async (t) => {
    const s = await make(t)
    await missing(t, s, 'video_missing', away)
    const j = job('video_a')
    t.same(await s.set(j), j)
    t.same(await s.get('video_a'), j)
  })

  t.test(`${name}: a job only moves forward; the first finished state stays`, async (t) => {
    const s = await make(t)
    await s.set(job('video_f', { progress: 10 }))
    t.match(await s.set(job('video_f', { progress: 50 })), { progress: 50 })
    t.match(await s.set(job('video_f', { progress: 20 })), { progress: 50 }, 'a stale poll gets the stored job')
    t.match(await s.set(job('video_f', { progress: 50, url: 'same-rank' })), { url: 'same-rank' }, 'a running job of the same rank is replaced')
    t.match(await s.set(job('video_f', { status: 'completed', progress: 100, url: 'https://cdn/v.mp4', completedAt: 5 })), { status: 'completed' })
    t.match(await s.set(job('video_f', { progress: 90 })), { status: 'completed', url: 'https://cdn/v.mp4' }, 'a stale in_progress never overwrites completed')
    t.match(await s.set(job('video_f', { status: 'failed', error: { code: 'upstream_timeout', message: 'late' } })), { status: 'completed' }, 'nor does a late failure')
    t.match(await s.get('video_f'), { status: 'completed', progress: 100, completedAt: 5 })
    await s.set(job('video_q', { status: 'queued' }))
    t.match(await s.set(job('video_q', { progress: 0 })), { status: 'in_progress' }, 'queued moves to in_progress')
  })

  t.test(`${name}: jobs expire after the TTL`, async (t) => {
    const s = await make(t)
    await s.set(job('video_t'))
    await new Promise((r) => setTimeout(r, TTL + 100))
    await missing(t, s, 'video_t', away)
  })
}

t.test('job ranks', async (t) => {
  t.same([jobRank({ status: 'queued', progress: 0 }), jobRank({ status: 'in_progress', progress: 0 }), jobRank({ status: 'in_progress', progress: 42.7 }), jobRank({ status: 'in_progress', progress: 250 }), jobRank({ status: 'in_progress', progress: Number.NaN }), jobRank({ status: 'failed', progress: 3 })],
    [0, 1, 43, 101, 1, 1000])
})

contract(t, 'memory', async () => new MemoryVideoJobStore({ ttlMs: TTL, maxEntries: 100, now: Date.now }))

t.test('redis', { skip }, async (t) => {
  const server = await startRedis(t)
  contract(t, 'redis', async (t) => {
    const r = replica(t, server, randomUUID())
    await until(() => r.store.mode() === 'redis')
    return r.jobs
  })
})

t.test('resilient (Redis killed)', { skip }, async (t) => {
  const server = await startRedis(t)
  contract(t, 'redis killed', async (t) => {
    await server.restart()
    const r = replica(t, server, randomUUID())
    await until(() => r.store.mode() === 'redis')
    await server.kill()
    return r.jobs
  }, true)
})

t.test('two replicas share jobs, sealed; another STATE_SECRET sees nothing; concurrent writes move forward', { skip }, async (t) => {
  const server = await startRedis(t)
  const ns = randomUUID()
  const a = replica(t, server, ns)
  const b = replica(t, server, ns)
  const other = replica(t, server, ns, 'another-secret')
  await until(() => a.store.mode() === 'redis' && b.store.mode() === 'redis' && other.store.mode() === 'redis')
  const created = job('video_s', { progress: 5 })
  await a.jobs.set(created)
  t.same(await b.jobs.get('video_s'), created, 'created on A, read on B')
  t.same(await a.local.get('video_s'), created, 'a local copy on the replica that created it, for an outage')
  t.same(await b.local.get('video_s'), created, 'and on the one that served it')
  t.equal(await other.jobs.get('video_s'), undefined, 'sealed with another key: not found')
  t.match(await other.jobs.set(job('video_s', { progress: 1 })), { progress: 1 }, 'a refused write whose winner does not open: the caller keeps its own')

  // Many concurrent polls from both replicas, one of which finishes the job.
  const writes = Array.from({ length: 40 }, (_, k) => (k % 2 ? a : b).jobs.set(k === 17 ? job('video_s', { status: 'completed', progress: 100, url: 'https://cdn/done.mp4' }) : job('video_s', { progress: k % 30 })))
  await Promise.all(writes)
  t.match(await a.jobs.get('video_s'), { status: 'completed', url: 'https://cdn/done.mp4' })
  t.match(await b.jobs.get('video_s'), { status: 'completed', url: 'https://cdn/done.mp4' })

  const probe = new Redis(server.url)
  t.teardown(() => { probe.disconnect() })
  const keys = await probe.keys(`qg:{${ns}}:video:*`)
  t.same(keys, [`qg:{${ns}}:video:video_s`], 'one key per job')
  const pttl = await probe.pttl(keys[0]!)
  t.ok(pttl > 0 && pttl <= TTL, `kept for the job TTL (${pttl} ms)`)
  const raw = (await probe.get(keys[0]!))!
  t.match(raw, /^1000:[\w-]+\.[\w-]+\.[\w-]+$/, 'the rank, then the sealed job')
  for (const secret of [PROMPT, 'lighthouse', 'proxy-pass', 'cdn/done', 'owner-hash', 'task-video_s', 'acc1@example.com']) t.notOk(raw.includes(secret), `no ${secret} in Redis`)
})

t.test('a job created while Redis is away (killed, restarted empty) is found after it, and shared at its next change', { skip }, async (t) => {
  const server = await startRedis(t)
  const ns = randomUUID()
  const a = replica(t, server, ns)
  const b = replica(t, server, ns)
  await until(() => a.store.mode() === 'redis' && b.store.mode() === 'redis')
  await server.kill()
  const during = job('video_o', { progress: 3 })
  t.same(await a.jobs.set(during), during, 'written locally after the command failed')
  t.equal(a.store.mode(), 'degraded-local')
  t.same(await a.local.get('video_o'), during)
  await server.restart()
  await until(() => a.store.mode() === 'redis' && b.store.mode() === 'redis')
  t.same(await a.jobs.get('video_o'), during, 'Redis misses it; the local store has it')
  t.same(await b.jobs.get('video_o'), during, 'shared once A read it again')
  await a.jobs.set(job('video_o', { progress: 40 }))
  t.match(await b.jobs.get('video_o'), { progress: 40 }, 'and its changes')
})

t.test('while Redis is away a replica answers the jobs it saw, and a retryable 503 for the others', { skip }, async (t) => {
  const server = await startRedis(t)
  const ns = randomUUID()
  const a = replica(t, server, ns)
  const b = replica(t, server, ns)
  await until(() => a.store.mode() === 'redis' && b.store.mode() === 'redis')
  const made = job('video_seen', { progress: 7 })
  await a.jobs.set(made)
  t.same(await b.jobs.get('video_seen'), made, 'B served it once')
  await a.jobs.set(job('video_only_a', { progress: 1 }))
  await server.kill()
  t.same(await b.jobs.get('video_seen'), made, 'B still answers the job it served')
  t.equal(b.store.mode(), 'degraded-local')
  await t.rejects(b.jobs.get('video_only_a'), { statusCode: 503, code: 'store_unavailable' }, 'one B never saw is not reported gone')
  const done = job('video_seen', { status: 'completed', progress: 100, url: 'https://cdn/done.mp4' })
  await b.jobs.set(done)
  await server.restart()
  await until(() => a.store.mode() === 'redis' && b.store.mode() === 'redis')
  t.match(await b.jobs.get('video_seen'), { status: 'completed' }, 'the change B made meanwhile is further along than Redis (empty now) and goes back')
  t.match(await a.jobs.get('video_seen'), { status: 'completed', url: 'https://cdn/done.mp4' }, 'A sees it')
})
