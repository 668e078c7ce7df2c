/**
 * When a follow-up cannot continue its upstream chat it folds into a new chat, silently: an edited
 * history, an identity that cannot serve, a chat the upstream no longer accepts, a chat busy with
 * another generation, an expired entry, another caller. The expiry events are checked too.
 */
import OpenAI from 'openai'
import t from 'tap'
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions'
import { harness, type Harness } from './helpers/setup.js'

const COMPLETIONS = '/api/v2/chat/completions'
type Ended = { identity: string | undefined; chatId: string; reason: string }

function client (h: Harness, apiKey = 'x'): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0, timeout: 20_000 })
}

function sent (h: Harness): Array<{ account: string | null; chatId: string; content: string }> {
  return h.sim.log().filter((e) => e.path === COMPLETIONS && e.status === 200).map((e) => {
    const b = e.body as { chat_id: string; messages: Array<{ content: string }> }
    return { account: e.account, chatId: b.chat_id, content: b.messages[0]!.content }
  })
}

/** Turn 1, then the history a follow-up sends. */
async function firstTurn (openai: OpenAI): Promise<ChatCompletionMessageParam[]> {
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'hello there' }]
  const r = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  return [...messages, { role: 'assistant', content: r.choices[0]!.message.content }, { role: 'user', content: 'and then?' }]
}

function ended (h: Harness): Ended[] {
  const list: Ended[] = []
  h.app.qwenEvents.on('conversation.expired', (e) => { list.push(e) })
  return list
}

t.test('an edited earlier message folds into a new chat', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const messages = await firstTurn(openai)
  messages[0] = { role: 'user', content: 'hello there, edited' }
  const r = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.notMatch(r.choices[0]!.message.content, /\[turn 2/)
  const s = sent(h)
  t.not(s[1]!.chatId, s[0]!.chatId)
  t.match(s[1]!.content, /^\[User\]\nhello there, edited\n\n\[Assistant\]/)
})

t.test('thinking text and reasoning_content sent back do not change the conversation', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const messages = await firstTurn(openai)
  const a = messages[1] as { role: 'assistant'; content: string }
  messages[1] = { ...a, content: `<think>hmm</think>${a.content}\n`, reasoning_content: 'hmm' } as ChatCompletionMessageParam
  await openai.chat.completions.create({ model: 'qwen3-max', messages })
  const s = sent(h)
  t.equal(s[1]!.chatId, s[0]!.chatId)
  t.equal(s[1]!.content, 'and then?')
})

t.test('an identity that cannot serve now: a new chat on another identity', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const messages = await firstTurn(openai)
  const first = sent(h)[0]!
  // The gateway's identities are the simulator's accounts, in order: the one that served turn 1 cools down.
  const k = h.sim.accounts.findIndex((x) => x.email === first.account)
  h.app.qwenStore.identities.record(h.app.qwenPool.identities[k]!.id, { kind: 'rate_limited', error: 'test', retryAfterMs: 60_000 }, false, Date.now())
  await openai.chat.completions.create({ model: 'qwen3-max', messages })
  const s = sent(h)
  t.not(s[1]!.chatId, s[0]!.chatId)
  t.not(s[1]!.account, s[0]!.account)
  t.match(s[1]!.content, /^\[User\]\nhello there/)
})

t.test('a chat the upstream refuses: the entry is abandoned (announced) and the turn folds into a new chat', async (t) => {
  const h = await harness(t)
  const events = ended(h)
  const openai = client(h)
  const messages = await firstTurn(openai)
  const chatId = sent(h)[0]!.chatId
  h.sim.reset() // the upstream forgets every chat
  const r = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.notMatch(r.choices[0]!.message.content, /\[turn 2/)
  t.equal(events.length, 1)
  t.equal(events[0]!.chatId, chatId)
  t.equal(events[0]!.reason, 'abandoned')
  t.type(events[0]!.identity, 'string')
  const s = sent(h)
  t.equal(s.length, 1, 'only the new chat answered (the refused attempt was not a 200 stream)')
  t.match(s[0]!.content, /^\[User\]\nhello there/)
  // The next follow-up continues the new chat.
  const more = [...messages, { role: 'assistant' as const, content: r.choices[0]!.message.content }, { role: 'user' as const, content: 'third' }]
  const r3 = await openai.chat.completions.create({ model: 'qwen3-max', messages: more, stream: true })
  let text = ''
  for await (const c of r3) text += c.choices[0]?.delta.content ?? ''
  t.match(text, /\[turn 2 of this chat/)
})

t.test('the stream path falls back too when the upstream refuses the parent', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const messages = await firstTurn(openai)
  h.sim.reset()
  const r = await openai.chat.completions.create({ model: 'qwen3-max', messages, stream: true })
  let text = ''
  for await (const c of r) text += c.choices[0]?.delta.content ?? ''
  t.match(text, /answering "\[User\] hello there/)
})

t.test('two concurrent requests on one conversation: one continues, the other folds into a new chat', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const messages = await firstTurn(openai)
  const chatId = sent(h)[0]!.chatId
  for (const a of h.sim.accounts) h.sim.queue(a.email, { frameDelayMs: 30 }, { frameDelayMs: 30 })
  const [a, b] = await Promise.all([
    openai.chat.completions.create({ model: 'qwen3-max', messages }),
    openai.chat.completions.create({ model: 'qwen3-max', messages }),
  ])
  const texts = [a, b].map((r) => r.choices[0]!.message.content!)
  t.equal(texts.filter((x) => /\[turn 2 of this chat/.test(x)).length, 1, 'one continued')
  const s = sent(h)
  t.equal(s.length, 3)
  t.equal(s.filter((x) => x.chatId === chatId).length, 2)
})

t.test('an expired entry: a new chat, and the expiry is announced', async (t) => {
  let now = 1_000_000
  const h = await harness(t, { gateway: { now: () => now, conversationTtlMs: 60_000 } })
  const events = ended(h)
  const openai = client(h)
  const messages = await firstTurn(openai)
  const chatId = sent(h)[0]!.chatId
  now += 61_000
  await openai.chat.completions.create({ model: 'qwen3-max', messages })
  const s = sent(h)
  t.not(s[1]!.chatId, chatId)
  t.same(events.map((e) => [e.chatId, e.reason]), [[chatId, 'expired']])
  // A sweep announces expiries nobody asked for again.
  now += 61_000
  t.equal(await h.app.qwenStore.conversations.sweep(now), 1)
  t.same(events.map((e) => e.reason), ['expired', 'expired'])
})

t.test('one API key never continues another key\'s conversation', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'alice:sk-alice|||bob:sk-bob' } })
  const messages = await firstTurn(client(h, 'sk-alice'))
  await client(h, 'sk-bob').chat.completions.create({ model: 'qwen3-max', messages })
  const s = sent(h)
  t.not(s[1]!.chatId, s[0]!.chatId)
  await client(h, 'sk-alice').chat.completions.create({ model: 'qwen3-max', messages })
  t.equal(sent(h)[2]!.chatId, s[0]!.chatId, 'alice continues hers')
})

t.test('client mode: each caller\'s own account continues its own chat', async (t) => {
  const h = await harness(t, { gateway: { serverMode: false, cookies: [] } })
  const [a, b] = h.sim.accounts
  const messages = await firstTurn(client(h, `;${a!.cookie}`))
  await client(h, `;${b!.cookie}`).chat.completions.create({ model: 'qwen3-max', messages })
  await client(h, `;${a!.cookie}`).chat.completions.create({ model: 'qwen3-max', messages })
  const s = sent(h)
  t.not(s[1]!.chatId, s[0]!.chatId)
  t.equal(s[1]!.account, b!.email)
  t.equal(s[2]!.chatId, s[0]!.chatId)
  t.equal(s[2]!.content, 'and then?')
})

t.test('a continued answer that fails before the client got anything folds into a new chat (non-stream)', async (t) => {
  const h = await harness(t)
  const events = ended(h)
  const openai = client(h)
  const messages = await firstTurn(openai)
  const first = sent(h)[0]!
  h.sim.queue(first.account!, { errorAfterFrames: 2 })
  const r = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.match(r.choices[0]!.message.content, /answering "\[User\] hello there/)
  t.same(events.map((e) => [e.chatId, e.reason]), [[first.chatId, 'abandoned']])
})

t.test('the store plugin sweeps expired entries on its own', async (t) => {
  const h = await harness(t, { gateway: { conversationTtlMs: 30 } })
  const events = ended(h)
  await firstTurn(client(h))
  for (let i = 0; i < 50 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(events.map((e) => e.reason), ['expired'])
})
