/** Chat deletion and conversations together: a remembered chat is kept for the next turn, and deleted once its entry expires. */
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'

async function until (cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

t.test('after_use keeps a conversation\'s chat while it can be continued, deletes it when the entry expires, and deletes one-shot chats', async (t) => {
  let clock = Date.now()
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { now: () => clock, chatDeletion: 'after_use', conversationTtlMs: 60_000 } })
  const email = h.sim.accounts[0]!.email
  const url = `${h.url}/v1/chat/completions`
  const first = [{ role: 'user', content: 'Tell me a story' }]
  const r1 = await (await postJson(url, { model: 'qwen3-max', messages: first })).json() as any
  const answer = r1.choices[0].message.content as string
  // The request is over; give the background deleter a moment: the chat must still be there.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(h.sim.chats(email).length, 1, 'the remembered chat was not deleted')
  const r2 = await postJson(url, { model: 'qwen3-max', messages: [...first, { role: 'assistant', content: answer }, { role: 'user', content: 'Go on' }] })
  t.equal(r2.status, 200)
  await r2.arrayBuffer()
  const [chat] = h.sim.chats(email)
  t.equal(chat!.turns, 2, 'the second turn continued the same chat')
  t.equal(h.sim.chats(email).length, 1)

  // A failed request leaves no conversation entry: its chats are one-shot and deleted.
  h.sim.queue(email, { fail: { status: 500 } }, { fail: { status: 500 } }, { fail: { status: 500 } })
  const failed = await postJson(url, { model: 'qwen3-max', messages: [{ role: 'user', content: 'this one fails' }] })
  t.equal(failed.status, 502)
  t.ok(await until(() => h.sim.chats(email).length === 1), 'the failed request\'s chats were deleted')

  // The entry expires: the chat can no longer be used and is deleted.
  clock += 120_000
  await h.app.qwenStore.conversations.sweep(clock)
  t.ok(await until(() => h.sim.chats(email).length === 0), 'deleted once its conversation expired')
})
