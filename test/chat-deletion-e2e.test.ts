/**
 * The chat-deletion plugin end to end (gateway + simulator over sockets): one-shot chats deleted
 * after use, retries and their limit, responses never delayed, the flush on close and its deadline,
 * kept, linked and task chats, and `off`.
 */
// These tests are about one-shot chats: conversations (which keep their chat for the next turn,
// see test/chat-deletion-conv.test.ts) are off, so every request leaves no conversation entry.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { harness, postJson, sseData, type Harness } from './helpers/setup.js'
import type { GatewayOptions } from '../src/index.js'

const body = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hello' }], ...extra })

async function until (cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return cond()
}

async function deletions (app: FastifyInstance, result: string): Promise<number> {
  return (await app.qwenMetrics.chatDeletions.get()).values.find((v) => v.labels.result === result)?.value ?? 0
}

async function one (t: Parameters<typeof harness>[0], gateway: GatewayOptions = {}): Promise<Harness & { email: string }> {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { conversationMode: 'fold', chatDeletionRetryDelayMs: 20, ...gateway } })
  return { ...h, email: h.sim.accounts[0]!.email }
}

const deletes = (h: Harness): number => h.sim.log().filter((e) => e.method === 'DELETE').length

t.test('after_use (the default): one-shot chats, streamed or not, are deleted once the response is over', async (t) => {
  const h = await one(t)
  t.equal(h.app.qwenChatDeletion.mode, 'after_use')
  const a = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(a.status, 200)
  await a.json()
  const b = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(sseData(await b.text()).at(-1), '[DONE]')
  t.ok(await until(() => h.sim.chats(h.email).length === 0), 'both chats are gone upstream')
  t.ok(await until(() => h.app.qwenChatDeletion.pending === 0))
  t.equal(await deletions(h.app, 'deleted'), 2, 'counted')
  t.equal(deletes(h), 2, 'one DELETE each')
})

t.test('the chats of failed attempts are deleted too, also when the request fails', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 }, gateway: { conversationMode: 'fold' } })
  const [x, y] = h.sim.accounts
  h.sim.queue(x!.email, { fail: { status: 500 } })
  h.sim.queue(y!.email, { fail: { status: 500 } })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 502, 'both accounts failed')
  await res.json()
  t.ok(await until(() => h.sim.chats(x!.email).length + h.sim.chats(y!.email).length === 0), 'every chat of the request is gone')
  t.equal(deletes(h), 2, 'one chat per attempt')
})

t.test('deletion never delays the response; a slow delete goes on in the background', async (t) => {
  const h = await one(t)
  h.sim.queue(h.email, { endpoint: 'chats_delete', firstByteDelayMs: 1500 })
  const started = Date.now()
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  await res.json()
  t.ok(Date.now() - started < 1200, 'answered before the delete could have finished')
  t.equal(h.sim.chats(h.email).length, 1, 'the chat is still there right after the response')
  t.ok(await until(() => h.sim.chats(h.email).length === 0), 'then deleted')
})

t.test('failed deletions are retried, up to three tries; then logged, counted, and the request unaffected', async (t) => {
  const h = await one(t)
  h.sim.queue(h.email, { endpoint: 'chats_delete', fail: { status: 500 } }, { endpoint: 'chats_delete', fail: 'rate_limited' })
  const ok = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(ok.status, 200)
  await ok.json()
  t.ok(await until(() => h.sim.chats(h.email).length === 0), 'deleted on the third try')
  t.equal(deletes(h), 3)
  t.ok(await until(() => h.app.qwenChatDeletion.pending === 0), 'settled')
  t.equal(await deletions(h.app, 'deleted'), 1)

  const seen: unknown[] = []
  h.app.qwenEvents.on('chat.deletion', (e) => seen.push(e))
  h.sim.queue(h.email, ...[1, 2, 3, 4].map(() => ({ endpoint: 'chats_delete' as const, fail: { status: 502 } })))
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(res.status, 200)
  t.equal(sseData(await res.text()).at(-1), '[DONE]')
  t.ok(await until(() => seen.length === 1))
  t.match(seen[0], { result: 'failed', attempts: 3, error: /./ })
  t.equal(deletes(h), 6, 'no fourth try')
  t.equal(h.sim.chats(h.email).length, 1, 'the chat is left')
  t.equal(await deletions(h.app, 'failed'), 1, 'counted as failed')
  t.match(await (await fetch(`${h.url}/metrics`)).text(), /qwen_chat_deletions_total\{result="failed"\} 1/)
})

t.test('a chat already gone upstream counts as gone', async (t) => {
  const h = await one(t)
  const ids: string[] = []
  h.app.qwenEvents.on('chat.created', (e) => { ids.push(e.chatId); h.app.qwenChatDeletion.keep(e.chatId) })
  await (await postJson(`${h.url}/v1/chat/completions`, body())).json()
  // Someone deletes it first (the same service the plugin uses), then the entry is released.
  t.equal(await h.app.qwenCompletions.chats.delete(ids[0]!), true)
  h.app.qwenChatDeletion.release(ids[0]!)
  t.ok(await until(() => h.app.qwenChatDeletion.pending === 0 && deletes(h) === 2))
  await new Promise((r) => setTimeout(r, 20))
  t.equal(await deletions(h.app, 'gone'), 1)
})

t.test('on close, pending deletions are flushed', async (t) => {
  const h = await one(t)
  h.sim.queue(h.email, { endpoint: 'chats_delete', firstByteDelayMs: 300 })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  await res.json()
  t.ok(await until(() => h.app.qwenChatDeletion.pending === 1))
  await h.app.close()
  t.equal(h.sim.chats(h.email).length, 0, 'deleted before the app finished closing')
})

t.test('the flush on close is bounded by its deadline', async (t) => {
  const h = await one(t, { chatDeletionFlushMs: 200 })
  h.sim.queue(h.email, { endpoint: 'chats_delete', firstByteDelayMs: 5_000 })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  await res.json()
  t.ok(await until(() => h.app.qwenChatDeletion.pending === 1))
  const started = Date.now()
  await h.app.close()
  t.ok(Date.now() - started < 2_000, 'close did not wait for the slow delete')
  t.equal(h.sim.chats(h.email).length, 1, 'left undone')
})

t.test('kept chats (a conversation entry) stay until released; held ones are spared', async (t) => {
  const h = await one(t)
  const del = h.app.qwenChatDeletion
  const ids: string[] = []
  h.app.qwenEvents.on('chat.created', (e) => { ids.push(e.chatId); del.keep(e.chatId) })
  await (await postJson(`${h.url}/v1/chat/completions`, body())).json()
  await new Promise((r) => setTimeout(r, 100))
  t.equal(h.sim.chats(h.email).length, 1, 'kept')
  t.ok(del.held(ids[0]!))
  // Another holder still has it: releasing the entry does not delete it yet.
  let stocked = true
  const off = del.retainedBy((id) => stocked && id === ids[0])
  del.release(ids[0]!)
  await new Promise((r) => setTimeout(r, 100))
  t.equal(h.sim.chats(h.email).length, 1, 'held by the other holder')
  stocked = false
  off()
  t.notOk(del.held(ids[0]!))
  del.release(ids[0]!)
  t.ok(await until(() => h.sim.chats(h.email).length === 0), 'deleted once released')
})

t.test('media chats: upstream links keep the chat for the media delay; a running task holds it', async (t) => {
  const h = await one(t, { chatDeletionMediaDelayMs: 300 })
  const del = h.app.qwenChatDeletion
  const ids: string[] = []
  h.app.qwenEvents.on('chat.created', (e) => {
    ids.push(e.chatId)
    if (ids.length === 1) del.linked(e.chatId)
    else del.taskStarted(e.chatId)
  })
  await (await postJson(`${h.url}/v1/chat/completions`, body())).json()
  await (await postJson(`${h.url}/v1/chat/completions`, body())).json()
  await new Promise((r) => setTimeout(r, 100))
  t.equal(h.sim.chats(h.email).length, 2, 'the linked chat waits, the task chat is held')
  t.ok(await until(() => !h.sim.chats(h.email).some((c) => c.id === ids[0])), 'the linked chat is deleted after the delay')
  t.ok(h.sim.chats(h.email).some((c) => c.id === ids[1]), 'the task chat is still there')
  del.taskEnded(ids[1]!)
  t.ok(await until(() => h.sim.chats(h.email).length === 0), 'deleted when the task ended')
})

t.test('CHAT_DELETION=off leaves every chat', async (t) => {
  const h = await one(t, { chatDeletion: 'off' })
  await (await postJson(`${h.url}/v1/chat/completions`, body())).json()
  await new Promise((r) => setTimeout(r, 150))
  t.equal(h.sim.chats(h.email).length, 1)
  t.equal(deletes(h), 0)
  t.equal((await h.app.qwenChatDeletion.sweep()).listed, 0, 'no sweep either')
})

t.test('media endpoints: url images wait for the media delay, b64_json ones go at once, video chats outlive the task budget', async (t) => {
  const h = await one(t, { chatDeletionMediaDelayMs: 1500, videoTimeoutMs: 1500, videoPollIntervalMs: 20 })
  const types = new Map<string, string>()
  h.app.qwenEvents.on('chat.created', (e) => { types.set(e.chatId, e.chatType) })
  const byType = (type: string): number => h.sim.chats(h.email).filter((c) => types.get(c.id) === type).length
  const has = (id: string): boolean => h.sim.chats(h.email).some((c) => c.id === id)

  const url = await postJson(`${h.url}/v1/images/generations`, { prompt: 'a red fox' })
  t.equal(url.status, 200)
  const link = (await url.json() as { data: Array<{ url: string }> }).data[0]!.url
  const b64 = await postJson(`${h.url}/v1/images/generations`, { prompt: 'a blue fox', response_format: 'b64_json' })
  t.equal(b64.status, 200)
  await b64.json()
  const [urlChat, b64Chat] = [...types.keys()]
  t.ok(await until(() => !has(b64Chat!)), 'the b64_json chat is deleted right after the response')
  t.ok(has(urlChat!), 'the url chat is still there')
  t.equal((await fetch(link)).status, 200, 'its link works')
  t.ok(await until(() => !has(urlChat!), 4000), 'then deleted after the media delay')

  // A video chat model: its chat waits VIDEO_TIMEOUT_MS plus the media delay.
  const video = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max-video', messages: [{ role: 'user', content: 'a cat' }] })
  t.equal(video.status, 200)
  await video.text()
  const started = Date.now()
  await new Promise((r) => setTimeout(r, 300))
  t.equal(byType('t2v'), 1, 'held while the task may run')
  t.ok(await until(() => byType('t2v') === 0, 6000), 'deleted once the task budget and the delay have passed')
  t.ok(Date.now() - started >= 2000)
})
