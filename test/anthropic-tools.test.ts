/**
 * Anthropic tool use over real sockets: `tools` reach the shared tool engine, a scripted call in the
 * gateway's marker format comes back as a `tool_use` block (JSON and stream), and the `tool_result`
 * of the next turn is folded for the upstream. (The SDK's round trip is in
 * `test/conformance/anthropic-sdk.test.ts`.)
 */
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'

const HEADERS = { 'anthropic-version': '2023-06-01' }
const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}
const CALL = 'Let me check.\n[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]'
const body = (extra: Record<string, unknown> = {}) => ({
  model: 'qwen3-max', max_tokens: 512, tools: [WEATHER], messages: [{ role: 'user', content: 'Weather in Paris?' }], ...extra,
})

interface Ev { event: string; data: Record<string, any> }
function events (raw: string): Ev[] {
  return raw.split('\n\n').filter(Boolean).map((b) => { const [e, d] = b.split('\n'); return { event: e!.slice(7), data: JSON.parse(d!.slice(6)) } })
}

t.test('a tool call comes back as a tool_use block with stop_reason tool_use', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL })
  const m = await (await postJson(`${h.url}/v1/messages`, body(), HEADERS)).json() as Record<string, any>
  t.equal(m.stop_reason, 'tool_use')
  t.same(m.content.map((b: any) => b.type), ['text', 'tool_use'])
  t.equal(m.content[0].text.trim(), 'Let me check.')
  t.match(m.content[1], { type: 'tool_use', id: /^toolu_/, name: 'get_weather', input: { city: 'Paris' } })
  const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as Record<string, any>
  t.match(sent.messages[0].content, /get_weather/, 'the tool block reached the upstream prompt')
})

t.test('stream: text block, then a tool_use block whose input_json_delta fragments join to the input', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL })
  const evs = events(await (await postJson(`${h.url}/v1/messages`, body({ stream: true }), HEADERS)).text())
  const starts = evs.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.type)
  t.same(starts, ['text', 'tool_use'])
  const json = evs.filter((e) => e.data.delta?.type === 'input_json_delta').map((e) => e.data.delta.partial_json).join('')
  t.same(JSON.parse(json), { city: 'Paris' })
  t.equal(evs.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'tool_use')
  t.notMatch(evs.filter((e) => e.data.delta?.type === 'text_delta').map((e) => e.data.delta.text).join(''), /TOOL CALL/, 'no marker leaks into text')
})

t.test('tool_choice any: a forced call', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL })
  const m = await (await postJson(`${h.url}/v1/messages`, body({ tool_choice: { type: 'any' } }), HEADERS)).json() as Record<string, any>
  t.equal(m.stop_reason, 'tool_use')
  t.equal(m.content[m.content.length - 1].name, 'get_weather')
})
