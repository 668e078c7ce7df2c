/**
 * The two strictness options of the shared store: `RATE_LIMIT_ON_STORE_ERROR` (per-key limits while
 * Redis is unreachable: local, allow, deny) and `REDIS_REQUIRED` (no start without Redis), against
 * a real redis-server killed or frozen, in process and through the built entry point.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../bench/free-port.js'
import { buildServer } from '../src/build.js'
import { SharedWindowStore, WindowStore } from '../src/limits.js'
import { StoreUnavailableError } from '../src/store/redis/connection.js'
import { startRedis } from './helpers/redis.js'
import { harness, postJson, startSim, type Harness } from './helpers/setup.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
const root = fileURLToPath(new URL('..', import.meta.url))

async function chat (h: Harness, content: string): Promise<{ status: number; body: any; retryAfter: string | null }> {
  const res = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content }] })
  return { status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') }
}

/** Start-up waits for Redis only briefly (0.75 s): on a busy machine the gateway may start degraded. */
async function shared (h: Harness): Promise<void> {
  const end = Date.now() + 10_000
  while (h.app.qwenStoreInfo.mode() !== 'redis' && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
}

t.test('SharedWindowStore while the shared counter is unavailable', async (t) => {
  const hit = async (): Promise<undefined> => undefined
  const broken = async (): Promise<never> => { throw new Error('down') }
  const incr = async (s: SharedWindowStore): Promise<{ err: Error | null; current: number }> => await new Promise((resolve) => {
    s.incr('k', (err, res) => { resolve({ err, current: res.current }) }, 60_000, 1)
  })
  const local = new SharedWindowStore(hit, new WindowStore(() => 0))
  t.same([(await incr(local)).current, (await incr(local)).current], [1, 2], 'local (the default): counted here')
  const allow = new SharedWindowStore(broken, new WindowStore(() => 0), 'allow')
  t.same([(await incr(allow)).current, (await incr(allow)).current], [0, 0], 'allow: never counted')
  const deny = new SharedWindowStore(hit, new WindowStore(() => 0), 'deny', () => new Error('no'))
  t.match((await incr(deny)).err, { message: 'no' })
  t.match((await incr(new SharedWindowStore(hit, new WindowStore(() => 0), 'deny'))).err, { message: /unavailable/ })
  const shared = new SharedWindowStore(async () => ({ current: 7, ttl: 5 }), new WindowStore(() => 0), 'deny')
  t.same(await incr(shared), { err: null, current: 7 }, 'the shared count when it answers')
})

t.test('RATE_LIMIT_ON_STORE_ERROR=deny: 429 rate_limit_store_unavailable while Redis is hung, served again after', { skip }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const h = await harness(t, { simulator: sim, gateway: { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 's', keyLimits: { anonymous: { rpm: 50 } }, rateLimitOnStoreError: 'deny', storeResyncMs: 200 } })
  await shared(h)
  t.equal(h.app.qwenStoreInfo.mode(), 'redis')
  t.equal((await chat(h, 'before')).status, 200)
  redis.freeze()
  for (let k = 0; k < 3; k++) {
    const r = await chat(h, `hung ${k}`)
    t.equal(r.status, 429)
    t.match(r.body, { error: { type: 'rate_limit_error', code: 'rate_limit_store_unavailable', message: /RATE_LIMIT_ON_STORE_ERROR=deny/ } })
    t.equal(r.retryAfter, '1')
  }
  t.equal(h.app.qwenStoreInfo.mode(), 'degraded-local')
  redis.thaw()
  await shared(h)
  t.equal((await chat(h, 'after')).status, 200, 'counted in Redis again')
})

t.test('RATE_LIMIT_ON_STORE_ERROR=allow: no per-key limit while Redis is down; limited again after', { skip }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const h = await harness(t, { simulator: sim, gateway: { redisUrl: redis.url, redisNamespace: randomUUID(), stateSecret: 's', keyLimits: { anonymous: { rpm: 1 } }, rateLimitOnStoreError: 'allow', storeResyncMs: 200 } })
  await shared(h)
  t.same([(await chat(h, 'a')).status, (await chat(h, 'b')).status], [200, 429])
  await redis.kill()
  const down: number[] = []
  for (let k = 0; k < 3; k++) down.push((await chat(h, `down ${k}`)).status)
  t.same(down, [200, 200, 200], 'not limited meanwhile (local counting would refuse the second)')
  await redis.restart()
  await shared(h)
  t.same([(await chat(h, 'c')).status, (await chat(h, 'd')).status], [200, 429], 'counted in Redis again')
})

t.test('REDIS_REQUIRED in process: no start without Redis; starts with it', { skip }, async (t) => {
  const port = await freePort()
  const started = Date.now()
  const err = await buildServer({ redisUrl: `redis://127.0.0.1:${port}`, redisRequired: true, stateSecret: 's', cookies: [] }, { logger: false }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof StoreUnavailableError)
  t.match((err as Error).message, /^REDIS_REQUIRED is set and Redis did not answer within 5000 ms \(.+\): not starting$/)
  t.ok(Date.now() - started >= 4900, 'waited the required start-up time')
  const redis = await startRedis(t)
  const app = await buildServer({ redisUrl: redis.url, redisRequired: true, stateSecret: 's', cookies: [], redisNamespace: randomUUID() }, { logger: false })
  await app.ready()
  t.equal(app.qwenStoreInfo.mode(), 'redis')
  await app.close()
})

t.test('REDIS_REQUIRED through npm start: exit code 1 and one line, without Redis', { skip }, async (t) => {
  const port = await freePort()
  const env = { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', QWEN_BASE_URL: 'http://127.0.0.1:9', REDIS_URL: `redis://:hunter2@127.0.0.1:${port}`, REDIS_REQUIRED: 'true', STATE_SECRET: 's' }
  const child = spawn(process.execPath, [join(root, 'dist', 'src', 'server.js')], { cwd: mkdtempSync(join(tmpdir(), 'qg-')), env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let err = ''
  let out = ''
  child.stderr.on('data', (d) => { err += String(d) })
  child.stdout.on('data', (d) => { out += String(d) })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => { resolve(c) }))
  t.equal(code, 1)
  t.match(err, /^REDIS_REQUIRED is set and Redis did not answer within 5000 ms.*: not starting\n$/)
  t.notMatch(err + out, /hunter2/, 'the password is never printed')
  t.notMatch(out, /Server listening/)
})
