/**
 * `openai` (pinned) Responses API against the gateway + simulator over real sockets:
 * `responses.create` (non-stream and `stream: true`), `responses.stream` (events and the final
 * response), the Codex CLI request body posted as-is, and the SDK's error classes.
 */
import { readFileSync } from 'node:fs'
import OpenAI from 'openai'
import t from 'tap'
import { defaultAnswer, defaultReasoning } from '../../src/simulator/index.js'
import { harness } from '../helpers/setup.js'

const USER = 'Tell me about Hangzhou'
const KEY = 'sk-conformance'

async function client (t: Parameters<typeof harness>[0]) {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: KEY } })
  return { h, openai: new OpenAI({ baseURL: `${h.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30_000 }) }
}

t.test('responses.create: output_text, items, usage', async (t) => {
  const { openai } = await client(t)
  const r = await openai.responses.create({ model: 'qwen3-max', instructions: 'Be brief.', input: USER })
  t.equal(r.status, 'completed')
  t.equal(r.output_text, defaultAnswer(`Be brief.\n\n${USER}`))
  t.same(r.output.map((o) => o.type), ['message'])
  t.ok(r.usage && r.usage.total_tokens === r.usage.input_tokens + r.usage.output_tokens)
})

t.test('responses.create with message items and stream: true', async (t) => {
  const { openai } = await client(t)
  const stream = await openai.responses.create({
    model: 'qwen3-max',
    input: [{ role: 'user', content: [{ type: 'input_text', text: USER }] }],
    stream: true,
  })
  let text = ''
  let completed: OpenAI.Responses.Response | undefined
  for await (const e of stream) {
    if (e.type === 'response.output_text.delta') text += e.delta
    if (e.type === 'response.completed') completed = e.response
  }
  t.equal(text, defaultAnswer(USER))
  t.equal(completed?.status, 'completed')
})

t.test('responses.stream with reasoning: deltas and finalResponse', async (t) => {
  const { openai } = await client(t)
  const stream = openai.responses.stream({ model: 'qwen3-max', input: USER, reasoning: { effort: 'high', summary: 'auto' } })
  let text = ''
  let summary = ''
  stream.on('response.output_text.delta', (e) => { text += e.delta })
  stream.on('response.reasoning_summary_text.delta', (e) => { summary += e.delta })
  const r = await stream.finalResponse()
  t.equal(text, defaultAnswer(USER))
  t.equal(summary, defaultReasoning(USER))
  t.equal(r.output_text, text)
  t.same(r.output.map((o) => o.type), ['reasoning', 'message'])
})

t.test('the Codex request body posted as-is through the SDK (tools stripped until the tool engine lands)', async (t) => {
  const { openai } = await client(t)
  const codex = JSON.parse(readFileSync(new URL('../fixtures/codex-responses-request.json', import.meta.url), 'utf8'))
  delete codex.tools
  delete codex.tool_choice
  const stream = await openai.responses.create(codex as OpenAI.Responses.ResponseCreateParamsStreaming)
  let completed = false
  for await (const e of stream) if (e.type === 'response.completed') completed = true
  t.ok(completed)
})

t.test('errors: previous_response_id is a BadRequestError naming the field; 401 AuthenticationError', async (t) => {
  const { h, openai } = await client(t)
  const err = await openai.responses.create({ model: 'qwen3-max', input: 'x', previous_response_id: 'resp_123' }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof OpenAI.BadRequestError)
  t.match(err, { param: 'previous_response_id', code: 'unsupported_parameter' })
  const wrong = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'nope', maxRetries: 0 })
  const denied = await wrong.responses.create({ model: 'qwen3-max', input: 'x' }).then(() => undefined, (e: unknown) => e)
  t.ok(denied instanceof OpenAI.AuthenticationError)
})
