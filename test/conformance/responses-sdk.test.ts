/**
 * `openai` (pinned) Responses API against the gateway + simulator over real sockets:
 * `responses.create` (non-stream and `stream: true`), `responses.stream` (events and the final
 * response; with a function tool and its output sent back), the Codex CLI request body posted as-is,
 * and the SDK's error classes.
 */
import { readFileSync } from 'node:fs'
import OpenAI from 'openai'
import t from 'tap'
import { defaultAnswer, defaultReasoning } from '../../src/simulator/index.js'
import { harness } from '../helpers/setup.js'

const USER = 'Tell me about Hangzhou'
const KEY = 'sk-conformance'
/** An answer holding one call in the gateway's marker format. */
const callText = (name: string, args: unknown) => `[TOOL CALL]\n${JSON.stringify({ name, arguments: args })}\n[END TOOL CALL]`

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

t.test('the Codex request body, tools included, posted as-is through the SDK: an apply_patch call comes back as a custom_tool_call', async (t) => {
  const { h, openai } = await client(t)
  const codex = JSON.parse(readFileSync(new URL('../fixtures/codex-responses-request.json', import.meta.url), 'utf8'))
  const patch = '*** Begin Patch\n*** Add File: src/list.txt\n+hello.ts\n*** End Patch\n'
  h.sim.queue(h.sim.accounts[0]!.email, { answer: callText('apply_patch', { input: patch }) })
  const stream = await openai.responses.create(codex as OpenAI.Responses.ResponseCreateParamsStreaming)
  let completed: OpenAI.Responses.Response | undefined
  let input = ''
  for await (const e of stream) {
    if (e.type === 'response.custom_tool_call_input.delta') input += e.delta
    if (e.type === 'response.completed') completed = e.response
  }
  t.equal(input, patch)
  const item = completed!.output.find((o) => o.type === 'custom_tool_call')
  t.match(item, { type: 'custom_tool_call', name: 'apply_patch', input: patch, call_id: /^call_/ })
})

t.test('responses.stream with a function tool, then the function_call_output sent back', async (t) => {
  const { h, openai } = await client(t)
  const tool = { type: 'function' as const, name: 'get_weather', description: 'Weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }
  h.sim.queue(h.sim.accounts[0]!.email, { answer: callText('get_weather', { city: 'Oslo' }) })
  const stream = openai.responses.stream({ model: 'qwen3-max', input: 'Weather in Oslo?', tools: [tool] })
  let args = ''
  stream.on('response.function_call_arguments.delta', (e) => { args += e.delta })
  const r = await stream.finalResponse()
  t.same(JSON.parse(args), { city: 'Oslo' })
  const call = r.output.find((o) => o.type === 'function_call')
  if (call?.type !== 'function_call') throw new Error('no function_call item')
  t.equal(call.name, 'get_weather')
  h.sim.queue(h.sim.accounts[0]!.email, { answer: 'Cold in Oslo.' })
  const next = await openai.responses.create({
    model: 'qwen3-max',
    tools: [tool],
    input: [
      { role: 'user', content: 'Weather in Oslo?' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: '-3°C' },
    ],
  })
  t.equal(next.output_text, 'Cold in Oslo.')
  const prompt = (h.sim.log().filter((e) => e.path === '/api/v2/chat/completions')[1]!.body as any).messages[0].content as string
  t.match(prompt, /-3°C/)
})

t.test('errors: an unknown previous_response_id is a BadRequestError naming the field; 401 AuthenticationError', async (t) => {
  const { h, openai } = await client(t)
  const err = await openai.responses.create({ model: 'qwen3-max', input: 'x', previous_response_id: 'resp_123' }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof OpenAI.BadRequestError)
  t.match(err, { param: 'previous_response_id', code: 'previous_response_not_found' })
  const wrong = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'nope', maxRetries: 0 })
  const denied = await wrong.responses.create({ model: 'qwen3-max', input: 'x' }).then(() => undefined, (e: unknown) => e)
  t.ok(denied instanceof OpenAI.AuthenticationError)
})
