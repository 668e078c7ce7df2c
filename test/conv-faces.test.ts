/**
 * Conversations on the other faces: a Claude Code style session on `/v1/messages` (the
 * `@anthropic-ai/sdk`) and a full-history session on `/v1/responses` (the `openai` SDK) continue
 * their upstream chat with only the new turn, like the chat route; the chats they keep survive
 * `CHAT_DELETION=after_use`; the same history on another face or another key does not continue.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import t from 'tap'
import { harness, type Harness } from './helpers/setup.js'

const COMPLETIONS = '/api/v2/chat/completions'
const CALL = 'Let me check.\n[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]'
const WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

function sent (h: Harness): Array<{ chatId: string; parent: string | null; content: string }> {
  return h.sim.log().filter((e) => e.path === COMPLETIONS && e.status === 200).map((e) => {
    const b = e.body as { chat_id: string; parent_id: string | null; messages: Array<{ content: string }> }
    return { chatId: b.chat_id, parent: b.parent_id ?? null, content: b.messages[0]!.content }
  })
}

const created = (h: Harness): number => h.sim.log().filter((e) => e.path === '/api/v2/chats/new').length
const settle = () => new Promise((resolve) => setTimeout(resolve, 100))

t.test('/v1/messages: a tool-using session (stream, tool_result and text in one user turn, thinking sent back) stays in one upstream chat', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: 'sk-a' } })
  const anthropic = new Anthropic({ baseURL: h.url, apiKey: 'sk-a', maxRetries: 0, timeout: 20_000 })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL })
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'weather in Paris?' }]
  const m1 = await anthropic.messages.create({ model: 'qwen3-max-thinking', max_tokens: 2048, system: 'You are terse.', tools: [WEATHER], messages })
  t.equal(m1.stop_reason, 'tool_use')
  const use = m1.content.find((b) => b.type === 'tool_use')
  if (use?.type !== 'tool_use') return t.fail('a tool_use block')
  await settle()
  // The tool result and a remark in the same user turn (what Claude Code sends).
  messages.push({ role: 'assistant', content: m1.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21°C, sunny' }, { type: 'text', text: 'and tomorrow?' }] })
  const stream = anthropic.messages.stream({ model: 'qwen3-max-thinking', max_tokens: 2048, system: 'You are terse.', tools: [WEATHER], messages })
  const m2 = await stream.finalMessage()
  t.same(m2.content.map((b) => b.type), ['thinking', 'text'])
  const text2 = m2.content.find((b) => b.type === 'text')
  t.match(text2?.type === 'text' ? text2.text : '', /\[turn 2 of this chat/)
  await settle()
  // The thinking block goes back as the client got it: it is not part of the conversation.
  messages.push({ role: 'assistant', content: m2.content }, { role: 'user', content: 'thanks' })
  const m3 = await anthropic.messages.create({ model: 'qwen3-max-thinking', max_tokens: 2048, system: 'You are terse.', tools: [WEATHER], messages })
  const text3 = m3.content.find((b) => b.type === 'text')
  t.match(text3?.type === 'text' ? text3.text : '', /\[turn 3 of this chat/)

  const s = sent(h)
  t.equal(s.length, 3)
  t.equal(new Set(s.map((x) => x.chatId)).size, 1, 'one upstream chat')
  t.match(s[1]!.content, /^\[TOOL RESULT get_weather toolu_\S+\]\n21°C, sunny\n\[END TOOL RESULT\]\n\n\[User\]\nand tomorrow\?$/, 'only the new turn')
  t.equal(s[2]!.content, 'thanks')
  t.equal(created(h), 1)
  t.equal(h.sim.chats(h.sim.accounts[0]!.email).length, 1, 'the kept chat survives after_use deletion')
})

t.test('/v1/responses with the whole input each time: turns continue (stream and not), the chat is kept', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 20_000 })
  const input: OpenAI.Responses.ResponseInputItem[] = [{ role: 'user', content: 'first' }]
  const r1 = await openai.responses.create({ model: 'qwen3-max', instructions: 'Be brief.', input, reasoning: { effort: 'high' } })
  t.same(r1.output.map((o) => o.type), ['reasoning', 'message'])
  await settle()
  input.push(...r1.output as OpenAI.Responses.ResponseInputItem[], { role: 'user', content: [{ type: 'input_text', text: 'second' }] })
  const stream = openai.responses.stream({ model: 'qwen3-max', instructions: 'Be brief.', input, reasoning: { effort: 'high' } })
  const r2 = await stream.finalResponse()
  t.match(r2.output_text, /\[turn 2 of this chat/)
  await settle()
  input.push(...r2.output as OpenAI.Responses.ResponseInputItem[], { role: 'user', content: 'third' })
  const r3 = await openai.responses.create({ model: 'qwen3-max', instructions: 'Be brief.', input, reasoning: { effort: 'high' } })
  t.match(r3.output_text, /\[turn 3 of this chat/)
  const s = sent(h)
  t.same(s.map((x) => x.content), ['Be brief.\n\nfirst', 'second', 'third'])
  t.equal(new Set(s.map((x) => x.chatId)).size, 1)
  t.equal(h.sim.chats(h.sim.accounts[0]!.email).length, 1)
})

t.test('a history from another face, an edited one, or another key: a new chat', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: 'alice:sk-alice|||bob:sk-bob' } })
  const alice = new Anthropic({ baseURL: h.url, apiKey: 'sk-alice', maxRetries: 0 })
  const bob = new Anthropic({ baseURL: h.url, apiKey: 'sk-bob', maxRetries: 0 })
  const m1 = await alice.messages.create({ model: 'qwen3-max', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] })
  const history: Anthropic.MessageParam[] = [{ role: 'user', content: 'hello' }, { role: 'assistant', content: m1.content }, { role: 'user', content: 'again' }]
  await bob.messages.create({ model: 'qwen3-max', max_tokens: 64, messages: history })
  t.equal(created(h), 2, 'another key: a new chat')
  await alice.messages.create({ model: 'qwen3-max', max_tokens: 64, messages: [{ role: 'user', content: 'hello!' }, ...history.slice(1)] })
  t.equal(created(h), 3, 'an edited history: a new chat')
  // The same conversation on the chat route (same model, messages, key): it continues, whichever face.
  const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'sk-alice', maxRetries: 0 })
  const text = m1.content.find((b) => b.type === 'text')
  const r = await openai.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: text?.type === 'text' ? text.text : '' }, { role: 'user', content: 'again' }] })
  t.match(r.choices[0]!.message.content, /\[turn 2 of this chat/)
  t.equal(created(h), 3)
})
