/**
 * Real multi-turn context through the `openai` SDK: follow-ups continue the upstream chat with only
 * the new turn (proven by the simulator's chain and by what was sent upstream), tool results as the
 * new turn, fold mode, and the measured saving on a 10-turn conversation.
 */
import OpenAI from 'openai'
import t from 'tap'
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import { defaultAnswer } from '../src/simulator/index.js'
import { PNG, dataUrl } from './helpers/media-fixtures.js'
import { harness, type Harness } from './helpers/setup.js'

const COMPLETIONS = '/api/v2/chat/completions'

function client (h: Harness, apiKey = 'x'): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0, timeout: 20_000 })
}

/** What each upstream completion request carried: its chat, parent and user text. */
function sent (h: Harness): Array<{ chatId: string; parent: string | null; content: string }> {
  return h.sim.log().filter((e) => e.path === COMPLETIONS && e.status === 200).map((e) => {
    const b = e.body as { chat_id: string; parent_id: string | null; messages: Array<{ content: string }> }
    return { chatId: b.chat_id, parent: b.parent_id ?? null, content: b.messages[0]!.content }
  })
}

/** Every chat of every simulator account. */
function chats (h: Harness): Array<{ id: string; turns: number; prompts: string[] }> {
  return h.sim.accounts.flatMap((a) => h.sim.chats(a.email))
}

t.test('three turns continue one upstream chat, each sending only its new user text', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'first question' }]
  const r1 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.equal(r1.choices[0]!.message.content, defaultAnswer('Be brief.\n\nfirst question'))
  messages.push({ role: 'assistant', content: r1.choices[0]!.message.content }, { role: 'user', content: 'second question' })
  const r2 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  // Turn 2 was answered with turn 1 in context: the simulator's chain.
  t.match(r2.choices[0]!.message.content, /answering "second question".*\[turn 2 of this chat, which began with "Be brief\. first question"\]/)
  messages.push({ role: 'assistant', content: r2.choices[0]!.message.content }, { role: 'user', content: 'third question' })
  // Streamed this time: the stream path remembers too.
  const stream = await openai.chat.completions.create({ model: 'qwen3-max', messages, stream: true })
  let text = ''
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
  t.match(text, /\[turn 3 of this chat/)
  messages.push({ role: 'assistant', content: text }, { role: 'user', content: 'fourth question' })
  const r4 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.match(r4.choices[0]!.message.content, /\[turn 4 of this chat/)

  const s = sent(h)
  t.equal(s.length, 4)
  t.equal(new Set(s.map((x) => x.chatId)).size, 1, 'one upstream chat')
  t.same(s.slice(1).map((x) => x.content), ['second question', 'third question', 'fourth question'], 'only the new turn is sent')
  t.equal(s[0]!.parent, null)
  const all = chats(h)
  t.equal(all.length, 1)
  t.same(all[0]!.prompts, ['Be brief.\n\nfirst question', 'second question', 'third question', 'fourth question'])
  t.equal(h.sim.log().filter((e) => e.path === '/api/v2/chats/new').length, 1, 'one chat created')
})

t.test('a tool result is the new turn, folded on its own in the marker format', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
  const call = '[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]'
  h.sim.queue(h.sim.accounts[0]!.email, { answer: call })
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'weather in Paris?' }]
  const r1 = await openai.chat.completions.create({ model: 'qwen3-max', messages, tools })
  const calls = r1.choices[0]!.message.tool_calls!
  t.equal(calls.length, 1)
  messages.push({ role: 'assistant', content: r1.choices[0]!.message.content, tool_calls: calls }, { role: 'tool', tool_call_id: calls[0]!.id, content: '21°C, sunny' })
  const r2 = await openai.chat.completions.create({ model: 'qwen3-max', messages, tools })
  t.match(r2.choices[0]!.message.content, /\[turn 2 of this chat/)
  const s = sent(h)
  t.equal(s.length, 2)
  t.equal(s[1]!.chatId, s[0]!.chatId)
  t.match(s[1]!.content, /^\[TOOL RESULT get_weather call_\S+\]\n21°C, sunny\n\[END TOOL RESULT\]$/)
})

t.test('CONVERSATION_MODE=fold: every request folds its history into a new chat', async (t) => {
  const h = await harness(t, { gateway: { conversationMode: 'fold' } })
  const openai = client(h)
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'one' }]
  const r1 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  messages.push({ role: 'assistant', content: r1.choices[0]!.message.content }, { role: 'user', content: 'two' })
  await openai.chat.completions.create({ model: 'qwen3-max', messages })
  const s = sent(h)
  t.not(s[1]!.chatId, s[0]!.chatId)
  t.match(s[1]!.content, /^\[User\]\none\n\n\[Assistant\]\n.*\n\n\[User\]\ntwo$/s)
})

t.test('a 10-turn conversation: upstream input characters with and without continuation', async (t) => {
  const run = async (mode: 'upstream' | 'fold'): Promise<number> => {
    const h = await harness(t, { gateway: { conversationMode: mode } })
    const openai = client(h)
    const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: 'You are a helpful assistant.' }]
    for (let i = 1; i <= 10; i++) {
      messages.push({ role: 'user', content: `Question number ${i}: tell me something about the number ${i}.` })
      const r = await openai.chat.completions.create({ model: 'qwen3-max', messages })
      messages.push({ role: 'assistant', content: r.choices[0]!.message.content })
    }
    return sent(h).reduce((n, x) => n + x.content.length, 0)
  }
  const fold = await run('fold')
  const upstream = await run('upstream')
  t.comment(`10 turns: ${fold} characters folded, ${upstream} continued (${Math.round(100 * (1 - upstream / fold))}% saved)`)
  t.ok(upstream * 5 < fold, 'continuation sends less than a fifth of the folded characters')
})

t.test('a continued turn carries only its own attachments: the chat already has the earlier ones', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const openai = client(h)
  const img = { type: 'image_url' as const, image_url: { url: dataUrl('image/png', PNG) } }
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, img] }]
  const r1 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  messages.push({ role: 'assistant', content: r1.choices[0]!.message.content }, { role: 'user', content: 'and the colour?' })
  const r2 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  messages.push({ role: 'assistant', content: r2.choices[0]!.message.content }, { role: 'user', content: [{ type: 'text', text: 'and this one?' }, img] })
  const r3 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.match(r3.choices[0]!.message.content, /\[turn 3 of this chat/)
  const files = h.sim.log().filter((e) => e.path === COMPLETIONS && e.status === 200).map((e) => ((e.body as { messages: Array<{ files?: unknown[] }> }).messages[0]!.files ?? []).length)
  t.same(files, [1, 0, 1])
})
