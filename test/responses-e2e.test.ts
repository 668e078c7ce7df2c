/** `POST /v1/responses` over real sockets against the simulator. */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { defaultAnswer, defaultReasoning } from '../src/simulator/index.js'
import { harness, postJson } from './helpers/setup.js'

const USER = 'Tell me about Hangzhou'
const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', input: USER, ...extra })

interface Ev { event: string; data: Record<string, any> }
function events (raw: string): Ev[] {
  return raw.split('\n\n').filter((b) => b && !b.startsWith(':')).map((block) => {
    const [ev, data] = block.split('\n')
    return { event: ev!.slice(7), data: JSON.parse(data!.slice(6)) }
  })
}

t.test('non-stream: the response object and the prompt the upstream receives', async (t) => {
  const h = await harness(t)
  const res = await postJson(`${h.url}/v1/responses`, body({ instructions: 'Be brief.', store: true, metadata: { k: 'v' } }))
  t.equal(res.status, 200)
  const r = await res.json() as Record<string, any>
  t.match(r.id, /^resp_/)
  t.equal(r.object, 'response')
  t.ok(Math.abs(r.created_at - Date.now() / 1000) < 300)
  t.equal(r.status, 'completed')
  t.equal(r.model, 'qwen3-max')
  t.equal(r.instructions, 'Be brief.')
  t.equal(r.store, true, 'remembered for previous_response_id (test/conv-previous-response.test.ts)')
  t.same(r.metadata, { k: 'v' })
  t.equal(r.output.length, 1)
  t.match(r.output[0], { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: defaultAnswer(`Be brief.\n\n${USER}`) }] })
  t.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0)
  t.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens)
  const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as Record<string, any>
  t.equal(sent.messages[0].content, `Be brief.\n\n${USER}`)
})

t.test('stream with reasoning: typed events, sequence numbers, response.completed lists every item', async (t) => {
  const h = await harness(t)
  const res = await postJson(`${h.url}/v1/responses`, body({ stream: true, reasoning: { effort: 'high', summary: 'auto' } }))
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  const evs = events(await res.text())
  t.ok(evs.every((e) => e.event === e.data.type), 'event line = data.type')
  t.same(evs.map((e) => e.data.sequence_number), evs.map((_, i) => i))
  t.same(evs.slice(0, 2).map((e) => e.event), ['response.created', 'response.in_progress'])
  t.equal(evs[0]!.data.response.status, 'in_progress')
  const last = evs[evs.length - 1]!
  t.equal(last.event, 'response.completed')
  t.same(last.data.response.output.map((o: any) => o.type), ['reasoning', 'message'])
  const summary = evs.filter((e) => e.event === 'response.reasoning_summary_text.delta').map((e) => e.data.delta).join('')
  const text = evs.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join('')
  t.equal(summary, defaultReasoning(USER))
  t.equal(text, defaultAnswer(USER))
  t.equal(last.data.response.output[1].content[0].text, text)
  t.equal(last.data.response.output[0].summary[0].text, summary)
  t.ok(last.data.response.usage.output_tokens_details.reasoning_tokens > 0)
})

t.test('max_output_tokens: status incomplete', async (t) => {
  const h = await harness(t)
  const r = await (await postJson(`${h.url}/v1/responses`, body({ max_output_tokens: 3 }))).json() as Record<string, any>
  t.equal(r.status, 'incomplete')
  t.same(r.incomplete_details, { reason: 'max_output_tokens' })
})

t.test('stateful options and bad input: 400 in the OpenAI envelope', async (t) => {
  const h = await harness(t)
  const cases: Array<[unknown, string, string]> = [
    [body({ previous_response_id: 'resp_abc' }), 'previous_response_id', 'previous_response_not_found'],
    [body({ input: 5 }), 'input', 'invalid_type'],
    [body({ input: [{ type: 'message', role: 'robot', content: 'x' }] }), 'input[0].role', 'invalid_value'],
    [{ input: 'x' }, 'model', 'invalid_value'],
  ]
  for (const [b, param, code] of cases) {
    const res = await postJson(`${h.url}/v1/responses`, b)
    t.equal(res.status, 400, param)
    const j = await res.json() as any
    t.match(j.error, { param, code, type: 'invalid_request_error' }, param)
  }
})

t.test('upstream failure after the stream started: response.failed', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
  const res = await postJson(`${h.url}/v1/responses`, body({ stream: true }))
  t.equal(res.status, 200)
  const evs = events(await res.text())
  const last = evs[evs.length - 1]!
  t.equal(last.event, 'response.failed')
  t.equal(last.data.response.status, 'failed')
  t.equal(last.data.response.error.code, 'upstream_error')
  t.notOk(evs.some((e) => e.event === 'response.completed'))
})

t.test('the Codex request body, posted as-is: its history is folded for the upstream', async (t) => {
  const h = await harness(t)
  const codex = JSON.parse(readFileSync(new URL('./fixtures/codex-responses-request.json', import.meta.url), 'utf8')) as Record<string, unknown>
  const res = await postJson(`${h.url}/v1/responses`, codex)
  t.equal(res.status, 200)
  const evs = events(await res.text())
  t.equal(evs[evs.length - 1]!.event, 'response.completed')
  const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as Record<string, any>
  const prompt = sent.messages[0].content as string
  t.match(prompt, /Rename the greet function/)
  t.match(prompt, /Success\. Updated the following files/)
  t.match(prompt, /Now list the files in src\./)
  t.notMatch(prompt, /typescript rename function/, 'the web search call is left out')
  t.notMatch(prompt, /Looking at the file first/, 'reasoning items are left out')
})

t.test('text.format json_schema: the checked JSON is the output text', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: 'Here you go:\n```json\n{"city": "Paris", "temp": 18}\n```' })
  const format = { type: 'json_schema', name: 'weather', strict: true, schema: { type: 'object', properties: { city: { type: 'string' }, temp: { type: 'number' } }, required: ['city', 'temp'], additionalProperties: false } }
  const r = await (await postJson(`${h.url}/v1/responses`, body({ text: { format } }))).json() as Record<string, any>
  t.equal(r.status, 'completed')
  t.same(JSON.parse(r.output[0].content[0].text), { city: 'Paris', temp: 18 })
  t.same(r.text.format, format, 'the format is echoed')
  const prompt = (h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as any).messages[0].content as string
  t.match(prompt, /# Output format/)
})

t.test('image and video generation models are refused on this face, naming the model', async (t) => {
  const h = await harness(t)
  const res = await postJson(`${h.url}/v1/responses`, body({ model: 'qwen3-max-image' }))
  t.equal(res.status, 400)
  t.match(await res.json(), { error: { param: 'model', code: 'invalid_value', message: /generates images/ } })
  const video = await postJson(`${h.url}/v1/messages`, { model: 'qwen3-max-video', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
  t.equal(video.status, 400)
  t.match(await video.json(), { type: 'error', error: { type: 'invalid_request_error', message: /generates videos/ } })
})
