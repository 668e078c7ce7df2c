/**
 * `@anthropic-ai/sdk` (pinned) against the gateway + simulator over real sockets: `messages.create`,
 * `messages.stream` (events and the final message), a tool-use round trip, `countTokens`,
 * `models.list`, and the SDK's error classes for the gateway's statuses.
 */
import Anthropic from '@anthropic-ai/sdk'
import t from 'tap'
import { defaultAnswer, defaultReasoning } from '../../src/simulator/index.js'
import { harness } from '../helpers/setup.js'

const WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}
const CALL = 'Let me check.\n[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]'

const USER = 'Tell me about Hangzhou'
const KEY = 'sk-conformance'

async function client (t: Parameters<typeof harness>[0]) {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: KEY } })
  return { h, anthropic: new Anthropic({ baseURL: h.url, apiKey: KEY, maxRetries: 0, timeout: 30_000 }) }
}

t.test('messages.create: text answer, usage, stop_reason', async (t) => {
  const { anthropic } = await client(t)
  const m = await anthropic.messages.create({ model: 'qwen3-max', max_tokens: 512, system: 'Be brief.', messages: [{ role: 'user', content: USER }] })
  t.equal(m.type, 'message')
  t.equal(m.role, 'assistant')
  t.equal(m.stop_reason, 'end_turn')
  t.equal(m.content.length, 1)
  const block = m.content[0]!
  t.equal(block.type, 'text')
  if (block.type === 'text') t.equal(block.text, defaultAnswer(`Be brief.\n\n${USER}`))
  t.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0)
})

t.test('messages.create with authToken (Bearer) instead of apiKey', async (t) => {
  const { h } = await client(t)
  const viaBearer = new Anthropic({ baseURL: h.url, authToken: KEY, apiKey: null, maxRetries: 0 })
  const m = await viaBearer.messages.create({ model: 'qwen3-max', max_tokens: 64, messages: [{ role: 'user', content: USER }] })
  t.equal(m.stop_reason, 'end_turn')
})

t.test('messages.stream: thinking then text, events, finalMessage', async (t) => {
  const { anthropic } = await client(t)
  const stream = anthropic.messages.stream({
    model: 'qwen3-max',
    max_tokens: 2048,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: USER }],
  })
  let text = ''
  let thinking = ''
  stream.on('text', (d) => { text += d })
  stream.on('thinking', (d) => { thinking += d })
  const m = await stream.finalMessage()
  t.equal(text, defaultAnswer(USER))
  t.equal(thinking, defaultReasoning(USER))
  t.same(m.content.map((b) => b.type), ['thinking', 'text'])
  t.equal(m.stop_reason, 'end_turn')
  t.ok(m.usage.output_tokens > 0)
})

t.test('messages.create with stream: true (raw events)', async (t) => {
  const { anthropic } = await client(t)
  const events = await anthropic.messages.create({ model: 'qwen3-max', max_tokens: 64, stream: true, messages: [{ role: 'user', content: USER }] })
  const types: string[] = []
  for await (const e of events) types.push(e.type)
  t.equal(types[0], 'message_start')
  t.same(types.slice(-2), ['message_delta', 'message_stop'])
  t.ok(types.includes('content_block_delta'))
})

t.test('tool-use round trip: messages.stream ends in tool_use, the tool_result goes back with messages.create', async (t) => {
  const { h, anthropic } = await client(t)
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL })
  const first = await anthropic.messages.stream({ model: 'qwen3-max', max_tokens: 512, tools: [WEATHER], messages: [{ role: 'user', content: 'Weather in Paris?' }] }).finalMessage()
  t.equal(first.stop_reason, 'tool_use')
  const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!
  t.same(use.input, { city: 'Paris' })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: 'It is 18 degrees in Paris.' })
  const second = await anthropic.messages.create({
    model: 'qwen3-max',
    max_tokens: 512,
    tools: [WEATHER],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18°C, sunny' }] },
    ],
  })
  t.equal(second.stop_reason, 'end_turn')
  t.same(second.content, [{ type: 'text', text: 'It is 18 degrees in Paris.' }])
  const prompts = h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').map((e) => (e.body as any).messages[0].content as string)
  t.match(prompts[1], /18°C, sunny/)
  t.match(prompts[1], new RegExp(use.id))
})

t.test('countTokens and models.list', async (t) => {
  const { anthropic } = await client(t)
  const c = await anthropic.messages.countTokens({ model: 'qwen3-max', messages: [{ role: 'user', content: USER }] })
  t.ok(c.input_tokens > 0)
  const ids: string[] = []
  for await (const m of anthropic.models.list()) ids.push(m.id)
  t.ok(ids.includes('qwen3-max'))
})

t.test('error classes: 401, 404, 400 and a mid-stream error', async (t) => {
  const { h, anthropic } = await client(t)
  const wrong = new Anthropic({ baseURL: h.url, apiKey: 'nope', maxRetries: 0 })
  t.ok(await wrong.messages.create({ model: 'qwen3-max', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).then(() => false, (e: unknown) => e instanceof Anthropic.AuthenticationError), 'Anthropic.AuthenticationError')
  t.ok(await anthropic.messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).then(() => false, (e: unknown) => e instanceof Anthropic.NotFoundError), 'Anthropic.NotFoundError')
  t.ok(await anthropic.messages.create({ model: 'qwen3-max', max_tokens: 8, messages: [] }).then(() => false, (e: unknown) => e instanceof Anthropic.BadRequestError), 'Anthropic.BadRequestError')
  h.sim.queue(h.sim.accounts[0]!.email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
  const stream = anthropic.messages.stream({ model: 'qwen3-max', max_tokens: 64, messages: [{ role: 'user', content: USER }] })
  const err = await stream.finalMessage().then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof Anthropic.APIError, 'the error event is thrown as an APIError')
  t.match((err as Error).message, /Internal error/)
})
