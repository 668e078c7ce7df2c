/**
 * Per-key limits on the completion routes: requests per minute (429 `rate_limit_exceeded` with
 * `retry-after`), requests in progress (429 `too_many_concurrent_requests`), per-name overrides,
 * per-address counting on an open gateway, and which routes count.
 */
import t from 'tap'
import { GatewayError } from '../src/errors.js'
import { buildServer } from '../src/index.js'
import { Leases, MAX_TRACKED, WindowStore } from '../src/limits.js'
import { COMPLETION_ROUTE } from '../plugins/limits.js'
import { harness, postJson, startSim } from './helpers/setup.js'
import { until } from './helpers/log-sink.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } }
const upstreamTurns = (log: Array<{ path: string }>): number => log.filter((e) => e.path === '/api/v2/chat/completions').length

t.test('requests per minute: 429 rate_limit_exceeded with retry-after, per key, a new window after a minute', async (t) => {
  let clock = Date.now()
  const h = await harness(t, {
    sim: { demoAccounts: 1 },
    gateway: { apiKey: 'alice:sk-a|||bob:sk-b|||ci:sk-ci', rateLimitRpm: 2, keyLimits: { bob: { rpm: 3 }, ci: { rpm: 0 } }, now: () => clock },
  })
  const url = `${h.url}/v1/chat/completions`
  for (let i = 0; i < 2; i++) t.equal((await postJson(url, body(), bearer('sk-a'))).status, 200)
  const before = upstreamTurns(h.sim.log())
  clock += 20_000
  const over = await postJson(url, body(), bearer('sk-a'))
  t.equal(over.status, 429)
  t.equal(over.headers.get('retry-after'), '40', 'the seconds left in the window')
  const e = await over.json() as ErrorBody
  t.same([e.error.type, e.error.code, e.error.param], ['rate_limit_error', 'rate_limit_exceeded', null])
  t.match(e.error.message, /2 requests per minute/)
  t.equal(upstreamTurns(h.sim.log()), before, 'nothing reached the upstream')
  t.equal((await fetch(`${h.url}/v1/models`, { headers: bearer('sk-a') })).status, 200, 'other routes do not count')

  // bob has 3, ci has none.
  for (let i = 0; i < 3; i++) t.equal((await postJson(url, body(), bearer('sk-b'))).status, 200, `bob ${i + 1}`)
  t.equal((await postJson(url, body(), bearer('sk-b'))).status, 429, 'bob 4')
  for (let i = 0; i < 5; i++) t.equal((await postJson(url, body(), bearer('sk-ci'))).status, 200, `ci ${i + 1}: no limit`)

  clock += 40_000
  t.equal((await postJson(url, body(), bearer('sk-a'))).status, 200, 'a new window')
  const text = await (await fetch(`${h.url}/metrics`, { headers: bearer('sk-a') })).text()
  t.match(text, /status="429",model="",key="alice"\} 1/, 'the 429 is counted under the key name')
})

t.test('requests in progress: a second stream of the same key is 429 too_many_concurrent_requests until the first closes', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const h = await harness(t, { simulator: sim, gateway: { apiKey: 'alice:sk-a|||bob:sk-b', maxConcurrentStreamsPerKey: 1, keyLimits: { bob: { streams: 2 } } } })
  const url = `${h.url}/v1/chat/completions`
  const email = sim.accounts[0]!.email
  sim.queue(email, { hang: true }, { hang: true })
  const ac = new AbortController()
  const first = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('sk-a') }, body: JSON.stringify(body({ stream: true })), signal: ac.signal })
  t.equal(first.status, 200)
  t.equal(h.app.qwenLimits.leases.count('key:alice'), 1)

  const second = await postJson(url, body({ stream: true }), bearer('sk-a'))
  t.equal(second.status, 429)
  t.equal(second.headers.get('retry-after'), '1')
  const e = await second.json() as ErrorBody
  t.same([e.error.type, e.error.code], ['rate_limit_error', 'too_many_concurrent_requests'])
  t.equal((await postJson(url, body(), bearer('sk-a'))).status, 429, 'a non-streamed completion counts too')

  // bob has two leases of his own.
  const acB = new AbortController()
  const b1 = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('sk-b') }, body: JSON.stringify(body({ stream: true })), signal: acB.signal })
  t.equal(b1.status, 200)
  const b2 = await postJson(url, body(), bearer('sk-b'))
  t.equal(b2.status, 200, "bob's second request fits his own limit")
  t.equal(h.app.qwenLimits.leases.count('key:bob'), 1, 'the finished one gave its lease back')

  const metrics = await (await fetch(`${h.url}/metrics`, { headers: bearer('sk-a') })).text()
  t.match(metrics, /qwen_active_streams 2/, 'two streams are open')

  ac.abort()
  acB.abort()
  await until(() => h.app.qwenLimits.leases.total === 0)
  const third = await postJson(url, body(), bearer('sk-a'))
  t.equal(third.status, 200, 'the lease came back when the first stream closed')
  const after = await (await fetch(`${h.url}/metrics`, { headers: bearer('sk-a') })).text()
  t.match(after, /qwen_active_streams 0/)
})

t.test('open gateway: limits count per client address', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { rateLimitRpm: 1 } })
  const req = (ip: string) => h.app.inject({ method: 'POST', url: '/v1/chat/completions', remoteAddress: ip, payload: body() })
  t.equal((await req('203.0.113.1')).statusCode, 200)
  t.equal((await req('203.0.113.1')).statusCode, 429)
  t.equal((await req('203.0.113.2')).statusCode, 200, 'another caller has its own budget')
})

t.test('which routes count: POST completion paths by default, config.qwenLimit overrides; faces re-render the typed error', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie), apiKey: 'sk-a', rateLimitRpm: 1 }, { logger: false })
  t.teardown(() => app.close())
  let seen: unknown
  // Stand-ins under a prefix (the real /v1/messages and /v1/responses are served by the gateway).
  app.post('/p/v1/messages', {
    errorHandler: (err, _req, reply) => {
      seen = err
      const g = err as unknown as GatewayError
      return reply.code(g.statusCode).headers(g.headers).send({ type: 'error', error: { type: 'rate_limit_error', message: g.message } })
    },
  }, async () => ({ ok: true }))
  // (under a prefix: the gateway serves /v1/images/generations itself)
  app.post('/p/v1/images/generations', async () => ({ ok: true }))
  app.get('/v1/videos', async () => ({ ok: true }))
  app.post('/p/v1/responses', { config: { qwenLimit: false } }, async () => ({ ok: true }))
  app.post('/custom', { config: { qwenLimit: true } }, async () => ({ ok: true }))
  await app.ready()
  const call = (method: 'GET' | 'POST', url: string) => app.inject({ method, url, headers: bearer('sk-a'), ...(method === 'POST' ? { payload: {} } : {}) })

  t.equal((await call('POST', '/p/v1/messages')).statusCode, 200)
  const over = await call('POST', '/p/v1/messages')
  t.equal(over.statusCode, 429)
  t.equal(over.headers['retry-after'], '60')
  t.same(over.json(), { type: 'error', error: { type: 'rate_limit_error', message: over.json().error.message } }, "the route's own envelope")
  t.ok(seen instanceof GatewayError && seen.code === 'rate_limit_exceeded', 'the route-level handler got the typed error')
  t.equal((await call('POST', '/p/v1/images/generations')).statusCode, 429, 'one budget per key across the completion routes')
  t.equal((await call('GET', '/v1/videos')).statusCode, 200, 'GET does not count')
  t.equal((await call('GET', '/v1/videos')).statusCode, 200)
  t.equal((await call('POST', '/p/v1/responses')).statusCode, 200, 'opted out')
  t.equal((await call('POST', '/custom')).statusCode, 429, 'opted in')

  for (const path of ['/v1/chat/completions', '/p/v1/messages', '/v1/responses', '/v1/images/edits', '/v1/videos']) t.match(path, COMPLETION_ROUTE)
  for (const path of ['/v1/messages/count_tokens', '/v1/videos/:id', '/v1/models', '/v1/images']) t.notMatch(path, COMPLETION_ROUTE)
})

t.test('WindowStore: fixed windows on the given clock, shared by children, bounded in size', async (t) => {
  let now = 1_000
  const store = new WindowStore(() => now)
  const incr = (s: WindowStore, key: string) => new Promise<{ current: number; ttl: number }>((resolve) => s.incr(key, (_e, r) => resolve(r), 60_000, 5))
  const read = (s: WindowStore, key: string) => new Promise<{ current: number; ttl: number }>((resolve) => s.read(key, (_e, r) => resolve(r), 60_000))
  t.same(await incr(store, 'a'), { current: 1, ttl: 60_000 })
  now += 10_000
  t.same(await incr(store, 'a'), { current: 2, ttl: 50_000 })
  const child = store.child()
  t.same(await incr(child, 'a'), { current: 3, ttl: 50_000 }, 'a child shares the counters')
  t.same(await read(store, 'a'), { current: 3, ttl: 50_000 })
  t.same(await read(store, 'b'), { current: 0, ttl: 0 })
  now += 50_000
  t.same(await read(store, 'a'), { current: 0, ttl: 0 }, 'the window is over')
  t.same(await incr(store, 'a'), { current: 1, ttl: 60_000 })

  // Full: expired windows go first, else the oldest.
  const big = new WindowStore(() => now)
  for (let i = 0; i < MAX_TRACKED; i++) await incr(big, `k${i}`)
  t.equal(big.size, MAX_TRACKED)
  await incr(big, 'new')
  t.equal(big.size, MAX_TRACKED, 'the oldest was dropped')
  t.same(await read(big, 'k0'), { current: 0, ttl: 0 })
  t.same(await read(big, 'k1'), { current: 1, ttl: 60_000 })
  now += 60_000
  await incr(big, 'later')
  t.equal(big.size, 1, 'expired windows were pruned')
})

t.test('Leases: at most max per key, idempotent release', async (t) => {
  const l = new Leases()
  const a = l.acquire('k', 2)!
  const b = l.acquire('k', 2)!
  t.equal(l.acquire('k', 2), undefined)
  t.equal(l.count('k'), 2)
  t.ok(l.acquire('other', 1))
  t.equal(l.total, 3)
  a()
  a()
  t.equal(l.count('k'), 1, 'a second release changes nothing')
  b()
  t.equal(l.count('k'), 0)
  t.equal(l.total, 1)
})
