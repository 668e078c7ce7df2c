/**
 * `GET /metrics` (prom-client, a registry per app instance) and the one access line per request of
 * every route.
 */
import { register as globalRegistry } from 'prom-client'
import t from 'tap'
import { buildServer } from '../src/index.js'
import { GatewayMetrics, UPSTREAM_KIND_BY_CODE } from '../src/metrics.js'
import { harness, postJson, startSim } from './helpers/setup.js'
import { logSink, until } from './helpers/log-sink.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })

/** One sample's value from a Prometheus text exposition (0 when absent). */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? ''
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(line.split(' ').pop())
  }
  return 0
}

t.test('counts change with completions: requests, tokens, histograms, chats, refreshes', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { metricsPublic: true, apiKey: 'alice:sk-a' } })
  const scrape = async () => {
    const r = await fetch(`${h.url}/metrics`)
    t.equal(r.status, 200, 'public with METRICS_PUBLIC')
    t.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
    return r.text()
  }
  const before = await scrape()
  t.equal(sample(before, 'qwen_requests_total', { route: '/v1/chat/completions' }), 0)
  t.equal(sample(before, 'qwen_token_refreshes_total', { result: 'success' }), 1, 'the start-up token fetch')
  t.equal(sample(before, 'qwen_identities', { state: 'healthy' }), 1)

  const headers = { authorization: 'Bearer sk-a' }
  const json = await (await postJson(`${h.url}/v1/chat/completions`, body(), headers)).json() as { usage: { prompt_tokens: number; completion_tokens: number } }
  await (await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }), headers)).text()
  const after = await scrape()
  const labels = { route: '/v1/chat/completions', method: 'POST', status: '200', model: 'qwen3-max', key: 'alice' }
  t.equal(sample(after, 'qwen_requests_total', labels), 2)
  t.equal(sample(after, 'qwen_requests_total', { route: '/metrics', status: '200', key: '' }), 1, 'the first scrape (public: no key name)')
  t.equal(sample(after, 'qwen_tokens_total', { model: 'qwen3-max', kind: 'prompt' }), 2 * json.usage.prompt_tokens)
  t.equal(sample(after, 'qwen_tokens_total', { model: 'qwen3-max', kind: 'completion' }), 2 * json.usage.completion_tokens)
  t.equal(sample(after, 'qwen_completion_ttft_seconds_count', { model: 'qwen3-max', stream: 'false' }), 1)
  t.equal(sample(after, 'qwen_completion_ttft_seconds_count', { model: 'qwen3-max', stream: 'true' }), 1)
  t.equal(sample(after, 'qwen_completion_duration_seconds_count', { model: 'qwen3-max', stream: 'true' }), 1)
  t.equal(sample(after, 'qwen_upstream_chats_total', { event: 'created' }), 2)
  t.equal(sample(after, 'qwen_active_streams'), 0)
  t.equal(sample(after, 'qwen_requests_in_progress'), 0)

  await postJson(`${h.url}/refresh-token`, {}, headers)
  t.equal(sample(await scrape(), 'qwen_token_refreshes_total', { result: 'success' }), 2)
  t.equal(sample(await scrape(), 'qwen_requests_total', { route: '/metrics' }), 3, 'scrapes are counted too')
})

t.test('failovers, upstream errors by kind, cooldowns, cuts after the first byte', async (t) => {
  const sim = await startSim(t, { demoAccounts: 2 })
  const h = await harness(t, { simulator: sim, gateway: { maxRetries: 1 } })
  for (const a of sim.accounts) sim.queue(a.email, { fail: 'rate_limited' })
  const limited = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(limited.status, 429)
  let text = await (await fetch(`${h.url}/metrics`)).text()
  t.equal(sample(text, 'qwen_failovers_total'), 1)
  t.equal(sample(text, 'qwen_upstream_errors_total', { kind: 'rate_limited' }), 2, 'the failed-over attempt and the last one')
  t.equal(sample(text, 'qwen_identity_cooldowns_total', { kind: 'rate_limited' }), 2)
  t.equal(sample(text, 'qwen_identities_blocked', { reason: 'rate_limited' }), 2)
  t.equal(sample(text, 'qwen_requests_total', { route: '/v1/chat/completions', status: '429', model: 'qwen3-max', key: 'anonymous' }), 1)

  // A drop after the stream was committed: the status stays 200, the error is a frame.
  await postJson(`${h.url}/refresh-token`, { resetCooldowns: true })
  sim.queue(sim.accounts[0]!.email, { dropAfterFrames: 3 })
  sim.queue(sim.accounts[1]!.email, { dropAfterFrames: 3 })
  const cut = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(cut.status, 200)
  t.match(await cut.text(), /"error"/)
  text = await (await fetch(`${h.url}/metrics`)).text()
  t.equal(sample(text, 'qwen_upstream_errors_total', { kind: 'mid_stream' }), 1)

  // A challenge answered to every account.
  sim.reset()
  for (const a of sim.accounts) sim.queue(a.email, { fail: 'challenge_html' })
  t.equal((await postJson(`${h.url}/v1/chat/completions`, body())).status, 503)
  text = await (await fetch(`${h.url}/metrics`)).text()
  t.equal(sample(text, 'qwen_upstream_errors_total', { kind: 'challenge' }), 2)
  t.equal(sample(text, 'qwen_identity_cooldowns_total', { kind: 'challenge' }), 2)
  t.equal(UPSTREAM_KIND_BY_CODE.upstream_timeout, 'timeout')
})

t.test('a refused cookie: identities gauge degraded, a failed refresh counted', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const h = await harness(t, { simulator: sim, gateway: { cookies: [sim.accounts[0]!.cookie, 'token=not-a-token; other=1'] } })
  const text = await (await fetch(`${h.url}/metrics`)).text()
  t.equal(sample(text, 'qwen_identities', { state: 'healthy' }), 1)
  t.equal(sample(text, 'qwen_identities', { state: 'degraded' }), 1)
  t.equal(sample(text, 'qwen_identities_blocked', { reason: 'auth_refused' }), 1)
  t.equal(sample(text, 'qwen_token_refreshes_total', { result: 'failure' }), 1)
})

t.test('two gateways in one process: separate registries, the global one untouched', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const a = await harness(t, { simulator: sim })
  const b = await harness(t, { simulator: sim })
  for (let i = 0; i < 3; i++) await (await postJson(`${a.url}/v1/chat/completions`, body())).text()
  const ta = await (await fetch(`${a.url}/metrics`)).text()
  const tb = await (await fetch(`${b.url}/metrics`)).text()
  t.equal(sample(ta, 'qwen_requests_total', { route: '/v1/chat/completions' }), 3)
  t.equal(sample(tb, 'qwen_requests_total', { route: '/v1/chat/completions' }), 0, "b did not see a's requests")
  t.not(a.app.qwenMetrics.registry, b.app.qwenMetrics.registry)
  t.equal(globalRegistry.getMetricsAsArray().length, 0, "prom-client's global registry is not used")
  t.ok(new GatewayMetrics({ poolCounts: () => ({ total: 0, healthy: 0, degraded: 0, down: 0, initialized: true }), blocked: () => ({}), inProgress: () => 0, upstream: () => ({ inUse: 0, queued: 0 }) }), 'a third one constructs without a name clash')
})

t.test('one access line per request on every route: key name, route, status; completions add model, identity, TTFT, tokens', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const sink = logSink()
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie), apiKey: 'alice:sk-a' }, { logger: { level: 'info', stream: sink.stream } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const headers = { authorization: 'Bearer sk-a' }
  const lines = (id: string) => sink.lines().filter((l) => l.reqId === id && (l.msg === 'request completed' || l.msg === 'completion'))

  const models = await fetch(`${base}/v1/models`, { headers })
  const mid = models.headers.get('x-request-id')!
  await until(() => lines(mid).length === 1)
  t.match(lines(mid)[0], { msg: 'request completed', method: 'GET', route: '/v1/models', status: 200, key: 'alice' })
  t.type(lines(mid)[0]!.durationMs, 'number')

  const missing = await fetch(`${base}/nope`)
  const nid = missing.headers.get('x-request-id')!
  await until(() => lines(nid).length === 1)
  t.match(lines(nid)[0], { route: 'unmatched', status: 404 })
  t.equal(lines(nid)[0]!.key, undefined)

  const ok = await postJson(`${base}/v1/chat/completions`, body(), headers)
  await ok.text()
  const cid = ok.headers.get('x-request-id')!
  await until(() => lines(cid).length === 1)
  const c = lines(cid)[0]!
  t.match(c, { msg: 'completion', route: '/v1/chat/completions', status: 200, key: 'alice', model: 'qwen3-max', outcome: 'ok', stream: false })
  t.match(c.identity, /^u-[0-9a-f]{12} \(cookie 1\)$/)
  t.type(c.ttftMs, 'number')
  t.type((c.usage as { completion: number }).completion, 'number')

  // A client that leaves mid-stream: 499, once.
  sim.queue(sim.accounts[0]!.email, { hang: true })
  const ac = new AbortController()
  const s = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })), signal: ac.signal })
  const sid = s.headers.get('x-request-id')!
  ac.abort()
  await until(() => lines(sid).length === 1)
  t.match(lines(sid)[0], { msg: 'completion', status: 499, outcome: 'client_closed', key: 'alice' })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(lines(sid).length, 1, 'one line per request')

  // Refused before any handler: still one line.
  const refused = await fetch(`${base}/v1/models`)
  const rid = refused.headers.get('x-request-id')!
  await until(() => lines(rid).length === 1)
  t.match(lines(rid)[0], { msg: 'request completed', status: 401, route: '/v1/models' })
})

t.test('handlers that are not async: a callback-style one and one that throws are logged once each', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const sink = logSink()
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: [] }, { logger: { level: 'info', stream: sink.stream } })
  t.teardown(() => app.close())
  app.get('/callback', { config: { qwenAuth: 'public' } }, (_req, reply) => { setTimeout(() => reply.send({ ok: true }), 5) })
  app.get('/throws', { config: { qwenAuth: 'public' } }, () => { throw new Error('boom') })
  await app.ready()
  const a = await app.inject({ method: 'GET', url: '/callback' })
  t.equal(a.statusCode, 200)
  const b = await app.inject({ method: 'GET', url: '/throws' })
  t.equal(b.statusCode, 500)
  const lines = (route: string) => sink.lines().filter((l) => l.msg === 'request completed' && l.route === route)
  await until(() => lines('/callback').length === 1 && lines('/throws').length === 1)
  t.match(lines('/throws')[0], { status: 500 })
})

t.test('a completion published outside a route handler is logged on its own', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const sink = logSink()
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: [] }, { logger: { level: 'info', stream: sink.stream } })
  t.teardown(() => app.close())
  await app.ready()
  app.qwenEvents.emit('completion', {
    requestId: 'req_x', model: 'm', stream: false, identity: undefined, status: 200, outcome: 'ok', attempts: 1,
    ttftMs: 1, durationMs: 2, usage: undefined, finishReason: 'stop', chatId: undefined, error: undefined,
  })
  await until(() => sink.lines().some((l) => l.msg === 'completion'))
  t.match(sink.lines().find((l) => l.msg === 'completion'), { reqId: 'req_x', model: 'm' })
})
