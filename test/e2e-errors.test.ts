/** Upstream failure modes and client errors, each mapped to the status DECISIONS prescribes. */
import t from 'tap'
import { defaultAnswer } from '../src/simulator/index.js'
import type { Scenario } from '../src/simulator/index.js'
import { harness, postJson, sseData, startSim } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const completions = <T extends { path: string }>(log: T[]): T[] => log.filter((e) => e.path === '/api/v2/chat/completions')

async function errorOf (res: Response) {
  t.match(res.headers.get('content-type'), /application\/json/)
  const j = await res.json() as { error: { message: string; type: string; param: string | null; code: string | null } }
  t.type(j.error.message, 'string')
  t.type(j.error.type, 'string')
  t.ok('param' in j.error && 'code' in j.error)
  return j.error
}

t.test('each upstream failure before the first frame gets its status, stream or not', async (t) => {
  const cases: Array<[string, Scenario, number, string]> = [
    ['RateLimited for hours', { fail: 'rate_limited', rateLimitHours: 10 }, 429, 'insufficient_quota'],
    ['anti-bot JSON', { fail: 'challenge_json' }, 503, 'upstream_challenge'],
    ['anti-bot HTML page', { fail: 'challenge_html' }, 503, 'upstream_challenge'],
    ['Bad_Request', { fail: 'bad_request' }, 502, 'upstream_bad_request'],
    ['HTTP 500', { fail: { status: 500, body: 'oops' } }, 502, 'upstream_error'],
    ['HTTP 503 HTML', { fail: { status: 503, body: '<html>maintenance</html>', contentType: 'text/html' } }, 502, 'upstream_error'],
    ['in-stream error as the first frame', { errorAfterFrames: 0 }, 502, 'upstream_error'],
    ['in-stream error right after response.created', { errorAfterFrames: 1 }, 502, 'upstream_error'],
    ['in-stream RateLimited with the first answer frames', { errorAfterFrames: 3, errorFrame: { success: false, data: { code: 'RateLimited', details: 'limit', num: 2 } } }, 429, 'insufficient_quota'],
    ['chats/new rate limited', { endpoint: 'chats_new', fail: 'rate_limited', rateLimitHours: 1 }, 429, 'insufficient_quota'],
  ]
  const sim = await startSim(t, { demoAccounts: 1 })
  const email = sim.accounts[0]!.email
  for (const [name, scenario, status, code] of cases) {
    for (const stream of [false, true]) {
      // A fresh gateway each time: a failure rightly puts the only account in a cooldown.
      const h = await harness(t, { simulator: sim })
      sim.queue(email, scenario)
      const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream }))
      t.equal(res.status, status, `${name} (stream ${stream}): status`)
      const e = await errorOf(res)
      t.equal(e.code, code, `${name} (stream ${stream}): code`)
      if (status === 429) {
        t.equal(res.headers.get('retry-after'), String((scenario.rateLimitHours ?? (scenario.errorFrame ? 2 : 10)) * 3600))
        t.equal(res.headers.get('x-should-retry'), 'false')
        t.equal(e.type, 'insufficient_quota')
      }
      if (code === 'upstream_challenge') t.match(e.message, /browser/)
      await h.app.close()
    }
  }
})

t.test('an error frame that comes with the first answer frames (nothing sent yet) fails over', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  for (const a of h.sim.accounts) h.sim.queue(a.email, { errorAfterFrames: 2 })
  const first = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(first.status, 502, 'both accounts failed before anything was sent: a status, not a stream')
  h.sim.queue(h.sim.accounts[0]!.email, { errorAfterFrames: 2 })
  h.sim.queue(h.sim.accounts[1]!.email, {})
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(res.status, 200)
  const data = sseData(await res.text())
  t.notOk(data.some((d) => d.includes('"error"')), 'the client never sees the first account\'s error')
  t.equal(completions(h.sim.log()).length, 4)
})

t.test('a refresh that meets an anti-bot check is reported as a challenge, not an auth failure', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: 'k' } })
  const email = h.sim.accounts[0]!.email
  h.sim.revokeTokens(email)
  h.sim.queue(email, { endpoint: 'auths', fail: 'challenge_json' })
  const res = await postJson(`${h.url}/v1/chat/completions`, body(), { authorization: 'Bearer k' })
  t.equal(res.status, 503)
  t.equal((await errorOf(res)).code, 'upstream_challenge')
  const health = await (await fetch(`${h.url}/health`, { headers: { authorization: 'Bearer k' } })).json() as any
  t.equal(health.counters.challenges, 1)
  t.equal(health.identities[0].failures, 0, 'not a breaker failure')
})

t.test('a request that timed out is not retried on the other accounts', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 3 }, gateway: { requestTimeoutMs: 300 } })
  for (const a of h.sim.accounts) h.sim.queue(a.email, { firstByteDelayMs: 2000 })
  const before = h.app.qwenPool.counters.acquired
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 504)
  t.equal(h.app.qwenPool.counters.acquired - before, 1, 'one identity leased, no failover for a dead request')
  t.equal(h.app.qwenPool.identities.reduce((n, i) => n + h.app.qwenPool.inFlightOf(i) + h.app.qwenPool.health(i).failures, 0), 0, 'lease released, no breaker failure')
})

t.test('an upstream line over the buffer cap, or a frame that is not JSON, is a 502', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { maxBufferBytes: 4096 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { fail: { status: 200, contentType: 'text/event-stream', body: `data: {"x":"${'y'.repeat(10_000)}"}` } })
  const long = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(long.status, 502)
  t.match((await errorOf(long)).message, /exceeded 4096 bytes/)
  h.sim.queue(email, { fail: { status: 200, contentType: 'text/event-stream', body: 'data: {not json\n\n' } })
  const bad = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(bad.status, 502)
  t.match((await errorOf(bad)).message, /not JSON/)
})

t.test('an expired token is refreshed from the cookie once and the request succeeds', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  h.sim.revokeTokens(email)
  h.sim.clearLog()
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 200)
  t.equal((await res.json() as any).choices[0].message.content, defaultAnswer('hi'))
  const paths = h.sim.log().filter((e) => e.path !== '/api/models').map((e) => `${e.path} ${e.status}`)
  t.same(paths, ['/api/v2/chats/new 401', '/api/v1/auths/ 200', '/api/v2/chats/new 200', '/api/v2/chat/completions 200'])
})

t.test('Unauthorized that a refresh cannot fix is 503 upstream_auth_failed, not retried by SDKs', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { fail: 'unauthorized' }, { fail: 'unauthorized_401' })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 503)
  t.equal(res.headers.get('x-should-retry'), 'false')
  t.equal((await errorOf(res)).code, 'upstream_auth_failed')
  t.equal(completions(h.sim.log()).length, 2, 'tried once, refreshed, tried once more')
})

t.test('a failure on one account fails over to the next before anything reaches the client', async (t) => {
  for (const stream of [false, true]) {
    const h = await harness(t, { sim: { demoAccounts: 3 } })
    const [a, b] = h.sim.accounts
    // Round-robin: whichever account comes next fails; queue a failure on two accounts.
    h.sim.queue(a!.email, { fail: { status: 500 } })
    h.sim.queue(b!.email, { fail: 'challenge_json' })
    const first = await postJson(`${h.url}/v1/chat/completions`, body({ stream }))
    const second = await postJson(`${h.url}/v1/chat/completions`, body({ stream }))
    t.equal(first.status, 200)
    t.equal(second.status, 200)
    for (const res of [first, second]) {
      const content = stream
        ? sseData(await res.text()).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d).choices[0]?.delta.content ?? '').join('')
        : (await res.json() as any).choices[0].message.content
      t.equal(content, defaultAnswer('hi'), `stream ${stream}: the client sees one clean answer`)
    }
    const tried = completions(h.sim.log()).map((e) => e.account)
    t.equal(tried.length, 4, `stream ${stream}: two requests, one failover each`)
    t.equal(new Set(tried).size, 3, 'failovers went to other accounts')
  }
})

t.test('timeouts: slow first byte is 504; silence after commit is an error frame', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { upstreamFirstByteTimeoutMs: 200, upstreamIdleTimeoutMs: 300, maxRetries: 0 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { firstByteDelayMs: 1000 })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(res.status, 504)
  t.equal((await errorOf(res)).code, 'upstream_timeout')
  h.sim.queue(email, { hang: true })
  const s = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(s.status, 200)
  const data = sseData(await s.text())
  t.equal(data[data.length - 1], '[DONE]')
  t.equal(JSON.parse(data[data.length - 2]!).error.code, 'upstream_timeout')
  h.sim.queue(email, { hang: true })
  const n = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(n.status, 504)
})

t.test('a whole-request budget (REQUEST_TIMEOUT_MS) answers 504', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { requestTimeoutMs: 300 } })
  h.sim.queue(h.sim.accounts[0]!.email, { firstByteDelayMs: 2000 })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 504)
  t.equal((await errorOf(res)).code, 'upstream_timeout')
})

t.test('client errors use the OpenAI envelope, Fastify-generated ones included', async (t) => {
  const h = await harness(t, { gateway: { bodyLimitBytes: 4096 } })
  const url = `${h.url}/v1/chat/completions`
  const bad = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' })
  t.equal(bad.status, 400)
  t.equal((await errorOf(bad)).code, 'invalid_json')
  const big = await postJson(url, body({ messages: [{ role: 'user', content: 'x'.repeat(8000) }] }))
  t.equal(big.status, 413)
  t.equal((await errorOf(big)).code, 'request_too_large')
  const nf = await fetch(`${h.url}/v1/nothing`)
  t.equal(nf.status, 404)
  t.equal((await errorOf(nf)).code, 'unknown_url')
  const method = await fetch(url)
  t.equal(method.status, 404)
  await errorOf(method)
  const noMessages = await postJson(url, { model: 'qwen3-max' })
  t.equal(noMessages.status, 400)
  const e1 = await errorOf(noMessages)
  t.equal(e1.type, 'invalid_request_error')
  t.match(e1.message, /messages/)
  const empty = await postJson(url, { model: 'qwen3-max', messages: [] })
  t.equal(empty.status, 400)
  t.equal((await errorOf(empty)).param, 'messages')
  const model = await postJson(url, body({ model: 'gpt-99' }))
  t.equal(model.status, 404)
  const e2 = await errorOf(model)
  t.same([e2.code, e2.param, e2.type], ['model_not_found', 'model', 'invalid_request_error'])
  const variant = await postJson(url, body({ model: 'qwen3-coder-plus-thinking' }))
  t.equal(variant.status, 404, 'a variant the model does not have is 404')
  const n = await postJson(url, body({ n: 2 }))
  t.equal(n.status, 400)
  t.equal((await errorOf(n)).param, 'n')
  const tools = await postJson(url, body({ stream: true, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }, { type: 'function', function: { name: 'f' } }] }))
  t.equal(tools.status, 400, 'a stream with a bad tool list is refused before it starts')
  const e3 = await errorOf(tools)
  t.same([e3.code, e3.param], ['invalid_value', 'tools[1].function.name'])
  const image = await postJson(url, body({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }))
  t.equal(image.status, 400)
  t.equal((await errorOf(image)).param, 'messages[0].content[0]')
  t.equal(completions(h.sim.log()).length, 0, 'no refused request reached the upstream')
})

t.test('no identity configured: 503 no_upstream_identity, models still listed', async (t) => {
  const h = await harness(t, { gateway: { cookies: [] } })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 503)
  const e = await errorOf(res)
  t.equal(e.code, 'no_upstream_identity')
  t.match(e.message, /COOKIE/)
  const models = await fetch(`${h.url}/v1/models`)
  t.equal(models.status, 200)
})

t.test('models: list, retrieve, 404, and the last good list when the upstream list fails', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { modelsCacheTtlMs: 0, modelAliases: { 'gpt-4o': 'qwen3-max' } } })
  const list = await (await fetch(`${h.url}/v1/models`)).json() as any
  t.equal(list.object, 'list')
  const ids = list.data.map((m: any) => m.id)
  t.ok(ids.includes('qwen3-max-thinking-search'))
  t.ok(ids.includes('qwq-32b-thinking'))
  t.notOk(ids.includes('qwq-32b-search'), 'variants only for capabilities the model has')
  t.ok(ids.includes('gpt-4o'))
  for (const m of list.data) {
    t.equal(m.object, 'model')
    t.ok(Number.isInteger(m.created))
    t.equal(m.owned_by, 'qwen')
  }
  const one = await fetch(`${h.url}/v1/models/qwen3-max-thinking`)
  t.equal(one.status, 200)
  t.equal((await one.json() as any).id, 'qwen3-max-thinking')
  const missing = await fetch(`${h.url}/v1/models/nope`)
  t.equal(missing.status, 404)
  t.equal((await errorOf(missing)).code, 'model_not_found')
  const alias = await (await postJson(`${h.url}/v1/chat/completions`, body({ model: 'gpt-4o' }))).json() as any
  t.equal(alias.model, 'gpt-4o', 'the alias is echoed back')
  h.sim.queue(h.sim.accounts[0]!.email, { endpoint: 'models', fail: { status: 500 } })
  await h.app.qwenModels.refresh(true)
  const again = await fetch(`${h.url}/v1/models`)
  t.equal(again.status, 200)
  t.equal((await again.json() as any).data.length, list.data.length, 'the last good list is served')
})
