/**
 * The scheduled sweep (`CHAT_DELETION=scheduled`) with a fake clock, end to end, and its pieces
 * (paging, list failures, held chats) against a scripted list.
 */
// These tests are about one-shot chats: conversations (which keep their chat for the next turn,
// see test/chat-deletion-conv.test.ts) are off, so every request leaves no conversation entry.
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'
import { MAX_SWEEP_PAGES, sweep, type SweepOptions } from '../src/chat-deletion/index.js'
import type { UpstreamChat } from '../src/upstream/protocol.js'

const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hello' }] }
const HOUR = 3_600_000

t.test('scheduled: chats are kept after use; a sweep deletes those older than the max age, sparing held ones', async (t) => {
  let clock = Date.now()
  const h = await harness(t, { sim: { demoAccounts: 2 }, gateway: { conversationMode: 'fold', chatDeletion: 'scheduled', now: () => clock, chatDeletionRetryDelayMs: 10 } })
  const del = h.app.qwenChatDeletion
  const ids: string[] = []
  // A conversation keeps the first chat (conversations call keep before the response ends).
  h.app.qwenEvents.on('chat.created', (e) => { if (ids.push(e.chatId) === 1) del.keep(e.chatId) })
  for (let i = 0; i < 4; i++) await (await postJson(`${h.url}/v1/chat/completions`, body)).json()
  const all = (): string[] => h.sim.accounts.flatMap((a) => h.sim.chats(a.email).map((c) => c.id))
  await new Promise((r) => setTimeout(r, 100))
  t.equal(all().length, 4, 'nothing deleted after use')

  // Young chats: the sweep lists them and leaves them.
  const young = await del.sweep()
  t.match(young, { listed: 4, queued: 0, failedIdentities: 0 })

  // The ready-chat stock holds another.
  const off = del.retainedBy((id) => id === ids[1])
  clock += 25 * HOUR
  const old = await del.sweep()
  t.match(old, { listed: 4, queued: 2 })
  await del.flush(2000)
  t.same(all().sort(), [ids[0], ids[1]].sort(), 'the kept and the held chat survive')
  off()
  del.release(ids[0]!)
  // Slow deletes: the next sweep finds them still pending.
  for (const a of h.sim.accounts) h.sim.queue(a.email, { endpoint: 'chats_delete', firstByteDelayMs: 300 })
  t.equal((await del.sweep()).queued, 2, 'released and no longer held: swept (scheduled mode deletes only by sweeping)')
  t.equal((await del.sweep()).queued, 0, 'a chat whose deletion is pending is not queued twice')
  t.equal(await del.flush(3000), true)
  t.same(all(), [], 'all gone')
})

t.test('scheduled: the sweep runs by itself every interval', async (t) => {
  let clock = Date.now()
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { conversationMode: 'fold', chatDeletion: 'scheduled', chatDeletionIntervalMs: 1000, chatDeletionMaxAgeMs: 0, now: () => clock } })
  await (await postJson(`${h.url}/v1/chat/completions`, body)).json()
  clock += 5_000
  const email = h.sim.accounts[0]!.email
  const end = Date.now() + 4000
  while (Date.now() < end && h.sim.chats(email).length > 0) await new Promise((r) => setTimeout(r, 50))
  t.equal(h.sim.chats(email).length, 0, 'swept without being asked')
})

function opts (pages: UpstreamChat[][], o: Partial<SweepOptions> = {}): SweepOptions & { removed: string[]; errors: string[] } {
  const removed: string[] = []
  const errors: string[] = []
  return {
    identities: () => ['a'],
    list: async (_id, page) => pages[page - 1] ?? [],
    held: () => false,
    remove: (id) => { removed.push(id) },
    now: () => 100_000_000,
    maxAgeMs: 1000,
    onError: (id) => { errors.push(id) },
    removed,
    errors,
    ...o,
  }
}

t.test('sweep: walks the pages, skips chats without a time, young or held ones; stops on an empty or repeated page', async (t) => {
  const oldSec = 1_000_000
  const o = opts([
    [{ id: 'new', createdAt: 99_999_999 }, { id: 'old1', createdAt: oldSec }, { id: 'untimed' }],
    [{ id: 'old2', updatedAt: oldSec }, { id: 'held', createdAt: oldSec }],
    [{ id: 'old2', updatedAt: oldSec }],
  ], { held: (id) => id === 'held' })
  const r = await sweep(o, new AbortController().signal)
  t.same(o.removed, ['old1', 'old2'])
  t.same(r, { listed: 5, queued: 2, failedIdentities: 0 })

  let calls = 0
  const same = opts([], { list: async () => { calls++; return [{ id: 'x', createdAt: oldSec }] } })
  await sweep(same, new AbortController().signal)
  t.equal(calls, 2, 'a site that ignores the page number: stops at the first repeated page')
  let n = 0
  const endless = opts([], { list: async () => [{ id: `c${n++}`, createdAt: oldSec }] })
  await sweep(endless, new AbortController().signal)
  t.equal(endless.removed.length, MAX_SWEEP_PAGES, 'bounded')
})

t.test('sweep: an identity whose list fails is reported and skipped; an aborted sweep stops', async (t) => {
  const o = opts([], {
    identities: () => ['bad', 'good'],
    list: async (id) => { if (id === 'bad') throw new Error('boom'); return [] },
  })
  t.same(await sweep(o, new AbortController().signal), { listed: 0, queued: 0, failedIdentities: 1 })
  t.same(o.errors, ['bad'])
  const ac = new AbortController()
  ac.abort()
  t.same(await sweep(opts([[{ id: 'x', createdAt: 1 }]]), ac.signal), { listed: 0, queued: 0, failedIdentities: 0 })
})
