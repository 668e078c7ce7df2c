/**
 * The scheduled sweep (`CHAT_DELETION=scheduled`) against live conversations, end to end with the
 * real conversation store (`qwenStore.conversations`, CONVERSATION_MODE=upstream) and a fake
 * clock: a chat older than the max age is spared while a live entry continues it (whichever face
 * made it), and swept once its entry has expired; the spared conversation goes on afterwards.
 */
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import t from 'tap'
import { harness } from './helpers/setup.js'

const HOUR = 3_600_000

t.test('scheduled: the sweep spares the chats of live conversations and deletes those whose entry expired', async (t) => {
  let clock = Date.now()
  const h = await harness(t, {
    sim: { demoAccounts: 1 },
    gateway: { chatDeletion: 'scheduled', conversationTtlMs: 30 * HOUR, chatDeletionMaxAgeMs: 24 * HOUR, now: () => clock, chatDeletionRetryDelayMs: 10 },
  })
  const email = h.sim.accounts[0]!.email
  const store = h.app.qwenStore.conversations
  const del = h.app.qwenChatDeletion
  const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 20_000 })
  const anthropic = new Anthropic({ baseURL: h.url, apiKey: 'x', maxRetries: 0, timeout: 20_000 })
  const chatOf = new Map<string, string>()
  h.app.qwenEvents.on('completion', (e) => { if (e.chatId) chatOf.set(e.requestId, e.chatId) })
  const lastChat = (): string => [...chatOf.values()].at(-1)!
  const ended: Array<[string, string]> = []
  h.app.qwenEvents.on('conversation.expired', (e) => { ended.push([e.chatId, e.reason]) })

  // Three conversations at t0, one per face.
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'keep talking' }]
  const a1 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  const chatA = lastChat()
  const r = await openai.responses.create({ model: 'qwen3-max', input: 'a stored response' })
  const chatB = lastChat()
  await anthropic.messages.create({ model: 'qwen3-max', max_tokens: 64, messages: [{ role: 'user', content: 'a claude turn' }] })
  const chatC = lastChat()
  t.equal(new Set([chatA, chatB, chatC]).size, 3)
  t.equal(h.sim.chats(email).length, 3)

  // 20 h later conversation A goes on: its entry lives 30 h from now.
  clock += 20 * HOUR
  messages.push({ role: 'assistant', content: a1.choices[0]!.message.content }, { role: 'user', content: 'still here' })
  const a2 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.match(a2.choices[0]!.message.content, /\[turn 2 of this chat/)
  t.equal(lastChat(), chatA)

  // 32 h after the start: every chat is older than the max age; the entries of B and C (and B's
  // response pointer) have expired, A's has not.
  clock += 12 * HOUR
  t.equal(await store.sweep(clock), 3, 'B, C and the response pointer of B expired')
  t.same(ended.filter(([id]) => id !== '').sort(), [[chatB, 'expired'], [chatC, 'expired']].sort())
  t.equal(await store.holds(chatA, clock), true, 'a live entry holds A')
  t.equal(await store.holds(chatB, clock), false)

  const swept = await del.sweep()
  t.match(swept, { listed: 3, queued: 2, failedIdentities: 0 })
  t.equal(await del.flush(3000), true)
  t.same(h.sim.chats(email).map((c) => c.id), [chatA], 'only the live conversation\'s chat is left')

  // The spared chat is still usable: the conversation continues in it.
  messages.push({ role: 'assistant', content: a2.choices[0]!.message.content }, { role: 'user', content: 'third' })
  const a3 = await openai.chat.completions.create({ model: 'qwen3-max', messages })
  t.match(a3.choices[0]!.message.content, /\[turn 3 of this chat/)
  // B's response id expired with its entry.
  const e = await openai.responses.create({ model: 'qwen3-max', previous_response_id: r.id, input: 'x' }).catch((err: unknown) => err)
  t.match(e, { status: 400, error: { code: 'previous_response_not_found' } })

  // Once A's entry expires too, the next sweep takes its chat.
  clock += 31 * HOUR
  await store.sweep(clock)
  t.equal(await store.holds(chatA, clock), false)
  t.match(await del.sweep(), { queued: 1 })
  t.equal(await del.flush(3000), true)
  t.same(h.sim.chats(email), [])
})

t.test('scheduled: a chat whose live entry this process never saw (another replica made it, or it predates a restart) is spared too', async (t) => {
  let clock = Date.now()
  const h = await harness(t, {
    sim: { demoAccounts: 1 },
    gateway: { chatDeletion: 'scheduled', conversationMode: 'fold', conversationTtlMs: 30 * HOUR, chatDeletionMaxAgeMs: 24 * HOUR, now: () => clock, chatDeletionRetryDelayMs: 10 },
  })
  const email = h.sim.accounts[0]!.email
  const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 20_000 })
  const chats: string[] = []
  h.app.qwenEvents.on('completion', (e) => { if (e.chatId) chats.push(e.chatId) })
  // Fold mode: the two chats are one-shot, so the deletion plugin keeps neither.
  await openai.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'one' }] })
  await openai.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'two' }] })
  const [held, loose] = chats as [string, string]
  await h.app.qwenChatDeletion.flush(3000)
  const before = h.sim.chats(email).map((c) => c.id)
  // after_use is not the mode here: both chats are still upstream. An entry (as a replica would write it) holds the first.
  t.same(before.sort(), [held, loose].sort())
  const identity = h.app.qwenPool.identities[0]!.id
  await h.app.qwenStore.conversations.put('elsewhere', { identity, chatId: held, responseId: 'r-1' }, clock)
  clock += 25 * HOUR
  t.match(await h.app.qwenChatDeletion.sweep(), { listed: 2, queued: 1 })
  t.equal(await h.app.qwenChatDeletion.flush(3000), true)
  t.same(h.sim.chats(email).map((c) => c.id), [held], 'the chat of the live entry is spared, the other swept')
})
