/** `POST /v1/messages` and `/v1/messages/count_tokens` over real sockets against the simulator. */
import t from 'tap'
import { estimateTokens } from '../src/openai/transform.js'
import { defaultAnswer, defaultReasoning } from '../src/simulator/index.js'
import { harness, postJson } from './helpers/setup.js'

const USER = 'Tell me about Hangzhou'
const HEADERS = { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14' }
const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', max_tokens: 1024, messages: [{ role: 'user', content: USER }], ...extra })

interface Ev { event: string; data: Record<string, any> }
function events (raw: string): Ev[] {
  return raw.split('\n\n').filter(Boolean).map((block) => {
    const lines = block.split('\n')
    const ev = lines.find((l) => l.startsWith('event: '))
    const data = lines.find((l) => l.startsWith('data: '))
    return { event: ev ? ev.slice(7) : '', data: data ? JSON.parse(data.slice(6)) : null }
  })
}

t.test('non-stream: the message shape, usage, and the prompt the upstream receives', async (t) => {
  const h = await harness(t)
  const res = await postJson(`${h.url}/v1/messages`, body({ system: [{ type: 'text', text: 'Be brief.' }] }), HEADERS)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const m = await res.json() as Record<string, any>
  t.match(m.id, /^msg_/)
  t.equal(m.type, 'message')
  t.equal(m.role, 'assistant')
  t.equal(m.model, 'qwen3-max')
  t.same(m.content, [{ type: 'text', text: defaultAnswer(`Be brief.\n\n${USER}`) }])
  t.equal(m.stop_reason, 'end_turn')
  t.equal(m.stop_sequence, null)
  t.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0)
  t.equal(m.usage.cache_creation_input_tokens, 0)
  const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as Record<string, any>
  t.equal(sent.messages[0].content, `Be brief.\n\n${USER}`)
  t.equal(sent.messages[0].feature_config.thinking_enabled, false)
})

t.test('thinking on: a thinking block before the text, in the body and in the stream', async (t) => {
  const h = await harness(t)
  const m = await (await postJson(`${h.url}/v1/messages`, body({ thinking: { type: 'enabled', budget_tokens: 2048 } }), HEADERS)).json() as Record<string, any>
  t.same(m.content.map((b: { type: string }) => b.type), ['thinking', 'text'])
  t.equal(m.content[0].thinking, defaultReasoning(USER))
  t.equal(m.content[1].text, defaultAnswer(USER))
  const sent = h.sim.log().filter((e) => e.path === '/api/v2/chat/completions')[0]!.body as Record<string, any>
  t.equal(sent.messages[0].feature_config.thinking_enabled, true)

  const res = await postJson(`${h.url}/v1/messages`, body({ stream: true, thinking: { type: 'enabled', budget_tokens: 2048 } }), HEADERS)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  const evs = events(await res.text())
  t.ok(evs.every((e) => e.event === e.data.type), 'every event line names its data.type')
  t.equal(evs[0]!.event, 'message_start')
  t.same(evs.slice(-2).map((e) => e.event), ['message_delta', 'message_stop'])
  const starts = evs.filter((e) => e.event === 'content_block_start')
  t.same(starts.map((e) => [e.data.index, e.data.content_block.type]), [[0, 'thinking'], [1, 'text']])
  t.equal(evs.filter((e) => e.event === 'content_block_stop').length, 2)
  const thinking = evs.filter((e) => e.data?.delta?.type === 'thinking_delta').map((e) => e.data.delta.thinking).join('')
  const text = evs.filter((e) => e.data?.delta?.type === 'text_delta').map((e) => e.data.delta.text).join('')
  t.equal(thinking, defaultReasoning(USER))
  t.equal(text, defaultAnswer(USER))
  const delta = evs[evs.length - 2]!.data
  t.equal(delta.delta.stop_reason, 'end_turn')
  t.ok(delta.usage.output_tokens > 0)
  t.ok(evs[0]!.data.message.usage.input_tokens > 0)
})

t.test('max_tokens cuts the answer: stop_reason max_tokens', async (t) => {
  const h = await harness(t)
  const m = await (await postJson(`${h.url}/v1/messages`, body({ max_tokens: 3 }), HEADERS)).json() as Record<string, any>
  t.equal(m.stop_reason, 'max_tokens')
  t.ok(defaultAnswer(USER).startsWith(m.content[0].text))
  t.ok(m.content[0].text.length < defaultAnswer(USER).length)
})

t.test('a conversation with tool results is folded for the upstream', async (t) => {
  const h = await harness(t)
  const res = await postJson(`${h.url}/v1/messages`, body({
    messages: [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: [{ type: 'text', text: 'It is 4.' }] },
      { role: 'user', content: [{ type: 'text', text: 'And 3+3?' }] },
    ],
  }), HEADERS)
  t.equal(res.status, 200)
  const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as Record<string, any>
  t.match(sent.messages[0].content, /What is 2\+2\?[\s\S]*It is 4\.[\s\S]*And 3\+3\?/)
})

t.test('auth: x-api-key or Bearer with the same key; errors in the Anthropic envelope', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'sk-secret-key' } })
  const ok1 = await postJson(`${h.url}/v1/messages`, body(), { ...HEADERS, 'x-api-key': 'sk-secret-key' })
  t.equal(ok1.status, 200)
  // Claude Code posts to /v1/messages?beta=true with its token as Bearer.
  const ok2 = await postJson(`${h.url}/v1/messages?beta=true`, body(), { ...HEADERS, authorization: 'Bearer sk-secret-key' })
  t.equal(ok2.status, 200)
  const bad = await postJson(`${h.url}/v1/messages`, body(), { ...HEADERS, 'x-api-key': 'wrong' })
  t.equal(bad.status, 401)
  t.same(await bad.json(), { type: 'error', error: { type: 'authentication_error', message: 'Invalid or missing API key: send it as `Authorization: Bearer <key>` or `x-api-key`' } })
  const count = await postJson(`${h.url}/v1/messages/count_tokens`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'x' }] }, HEADERS)
  t.equal(count.status, 401)
  t.equal((await count.json() as any).error.type, 'authentication_error')
})

t.test('bad requests: validation, translation and unknown models, all in the Anthropic envelope', async (t) => {
  const h = await harness(t)
  const cases: Array<[unknown, number, string, RegExp]> = [
    [{ model: 'qwen3-max', max_tokens: 10 }, 400, 'invalid_request_error', /messages/],
    [body({ messages: [{ role: 'user', content: 5 }] }), 400, 'invalid_request_error', /messages\[0\]\.content/],
    [body({ messages: [{ role: 'system', content: 'x' }] }), 400, 'invalid_request_error', /must be "user" or "assistant"/],
    [body({ stream: 'yes' }), 400, 'invalid_request_error', /stream/],
    [body({ model: 'no-such-model' }), 404, 'not_found_error', /no-such-model/],
  ]
  for (const [b, status, type, message] of cases) {
    const res = await postJson(`${h.url}/v1/messages`, b, HEADERS)
    t.equal(res.status, status, JSON.stringify(b).slice(0, 80))
    const j = await res.json() as any
    t.equal(j.type, 'error')
    t.equal(j.error.type, type)
    t.match(j.error.message, message)
    t.same(Object.keys(j), ['type', 'error'])
  }
  const notJson = await fetch(`${h.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' })
  t.equal(notJson.status, 400)
  t.equal((await notJson.json() as any).error.type, 'invalid_request_error')
})

t.test('upstream failures: a status before the stream starts, an error event after', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { fail: 'rate_limited', rateLimitHours: 2 })
  const limited = await postJson(`${h.url}/v1/messages`, body(), HEADERS)
  t.equal(limited.status, 429)
  t.ok(limited.headers.get('retry-after'))
  t.equal((await limited.json() as any).error.type, 'rate_limit_error')

  const h2 = await harness(t, { sim: { demoAccounts: 1 } })
  h2.sim.queue(h2.sim.accounts[0]!.email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
  const res = await postJson(`${h2.url}/v1/messages`, body({ stream: true }), HEADERS)
  t.equal(res.status, 200)
  const evs = events(await res.text())
  const last = evs[evs.length - 1]!
  t.equal(last.event, 'error')
  t.equal(last.data.type, 'error')
  t.equal(last.data.error.type, 'api_error')
  t.notOk(evs.some((e) => e.event === 'message_stop'), 'no message_stop after a failure')
})

t.test('count_tokens: the gateway estimate of the folded prompt', async (t) => {
  const h = await harness(t)
  const res = await postJson(`${h.url}/v1/messages/count_tokens`, { model: 'qwen3-max', system: 'Be brief.', messages: [{ role: 'user', content: USER }] }, HEADERS)
  t.equal(res.status, 200)
  t.same(await res.json(), { input_tokens: estimateTokens(`Be brief.\n\n${USER}`) })
  t.equal(h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').length, 0, 'nothing is sent upstream')
  const bad = await postJson(`${h.url}/v1/messages/count_tokens`, { model: 'qwen3-max', messages: [] }, HEADERS)
  t.equal(bad.status, 400)
  t.equal((await bad.json() as any).error.type, 'invalid_request_error')
})

t.test('lifecycle: a client that leaves, the request timeout, keep-alive pings, one completion event per answer', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { requestTimeoutMs: 400 } })
  const seen: Array<{ status: number; outcome: string; stream: boolean }> = []
  h.app.qwenEvents.on('completion', (e) => { seen.push({ status: e.status, outcome: e.outcome, stream: e.stream }) })
  const email = h.sim.accounts[0]!.email
  const upstream = () => h.sim.log().filter((e) => e.path === '/api/v2/chat/completions')

  h.sim.queue(email, { firstByteDelayMs: 3000 })
  const ac = new AbortController()
  const pending = fetch(`${h.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', ...HEADERS }, body: JSON.stringify(body()), signal: ac.signal }).catch((e: Error) => e)
  for (let i = 0; i < 100 && upstream().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  ac.abort()
  t.type(await pending, Error)
  for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(seen.shift(), { status: 499, outcome: 'client_closed', stream: false })

  h.sim.queue(email, { firstByteDelayMs: 3000 })
  const slow = await postJson(`${h.url}/v1/messages`, body(), HEADERS)
  t.equal(slow.status, 504)
  t.same(await slow.json(), { type: 'error', error: { type: 'api_error', message: 'The request took longer than the gateway allows (REQUEST_TIMEOUT_MS)' } })
  t.same(seen.shift(), { status: 504, outcome: 'error', stream: false })

  const h2 = await harness(t, { sim: { demoAccounts: 1 }, gateway: { keepAliveIntervalMs: 100 } })
  h2.sim.queue(h2.sim.accounts[0]!.email, { frameDelayMs: 120, answer: 'slow answer' })
  const res = await postJson(`${h2.url}/v1/messages`, body({ stream: true }), HEADERS)
  const raw = await res.text()
  t.match(raw, /^event: ping\ndata: {"type":"ping"}$/m, 'keep-alive is a ping event')
  t.match(raw, /event: message_stop\n/)
})

t.test('the per-key rate limit answers in the Anthropic envelope; count_tokens does not count', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'sk-a', rateLimitRpm: 1 } })
  const auth = { ...HEADERS, 'x-api-key': 'sk-a' }
  t.equal((await postJson(`${h.url}/v1/messages`, body(), auth)).status, 200)
  for (let i = 0; i < 2; i++) t.equal((await postJson(`${h.url}/v1/messages/count_tokens`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'x' }] }, auth)).status, 200)
  const over = await postJson(`${h.url}/v1/messages`, body(), auth)
  t.equal(over.status, 429)
  t.ok(over.headers.get('retry-after'))
  const j = await over.json() as any
  t.same(Object.keys(j), ['type', 'error'])
  t.equal(j.error.type, 'rate_limit_error')
})

t.test('a stop sequence that cuts the answer: stop_reason stop_sequence naming it, in the body and in the stream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { answer: 'first part END second part' })
  const m = await (await postJson(`${h.url}/v1/messages`, body({ stop_sequences: ['NEVER', 'END'] }), HEADERS)).json() as Record<string, any>
  t.same(m.content, [{ type: 'text', text: 'first part ' }])
  t.equal(m.stop_reason, 'stop_sequence')
  t.equal(m.stop_sequence, 'END')
  h.sim.queue(email, { answer: 'first part END second part' })
  const evs = events(await (await postJson(`${h.url}/v1/messages`, body({ stream: true, stop_sequences: ['END'] }), HEADERS)).text())
  const delta = evs.find((e) => e.event === 'message_delta')!.data
  t.same(delta.delta, { stop_reason: 'stop_sequence', stop_sequence: 'END' })
})
