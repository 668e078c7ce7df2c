/**
 * Ready chats end to end (gateway + simulator over sockets): a new conversation takes a chat created
 * ahead, the stock refills in the background, learns what to keep warm from traffic, never hands a
 * chat out twice, falls back when the upstream refuses a ready chat, discards old chats and those of
 * identities that change state, spares them in the scheduled sweep, and deletes them on close.
 */
import t from 'tap'
import { harness, postJson, sseData, type Harness } from './helpers/setup.js'
import type { GatewayOptions } from '../src/index.js'
import type { SimLogEntry } from '../src/simulator/index.js'

const body = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hello' }], ...extra })

async function until (cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return cond()
}

type Opts = { accounts?: number; gateway?: GatewayOptions }
async function ready (t: Parameters<typeof harness>[0], o: Opts = {}): Promise<Harness> {
  return harness(t, { sim: { demoAccounts: o.accounts ?? 1 }, gateway: { conversationMode: 'fold', readyChatsPerIdentity: 2, ...o.gateway } })
}

const created = (h: Harness): SimLogEntry[] => h.sim.log().filter((e) => e.path === '/api/v2/chats/new' && e.status === 200)
const completions = (h: Harness): SimLogEntry[] => h.sim.log().filter((e) => e.path === '/api/v2/chat/completions')
const deleted = (h: Harness): string[] => h.sim.log().filter((e) => e.method === 'DELETE' && e.status === 200).map((e) => e.path.split('/').at(-1)!)
/** Chats upstream that no turn used yet: the ready ones. */
const unused = (h: Harness, i = 0): string[] => h.sim.chats(h.sim.accounts[i]!.email).filter((c) => c.turns === 0).map((c) => c.id)

async function ask (h: Harness, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await postJson(`${h.url}/v1/chat/completions`, body(extra))
  const text = await res.text()
  if (res.status !== 200) throw new Error(`status ${res.status}: ${text}`)
  return text
}

t.test('off (READY_CHATS_PER_IDENTITY=0): nothing is created ahead', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { conversationMode: 'fold' } })
  t.equal(h.app.qwenReadyChats.enabled, false)
  await ask(h)
  await h.app.qwenReadyChats.idle()
  t.equal(created(h).length, 1, 'only the request\'s own chat')
})

t.test('the second conversation takes a chat created ahead; the stock refills after the take', async (t) => {
  const h = await ready(t)
  t.equal(h.app.qwenReadyChats.enabled, true)
  await ask(h)
  t.equal(created(h).length >= 1, true)
  await h.app.qwenReadyChats.idle()
  const stocked = unused(h)
  t.equal(stocked.length, 2, 'two ready chats for the model in demand')
  const before = created(h).length
  const seq = h.sim.log().at(-1)!.seq
  await ask(h, { stream: true })
  const mine = completions(h).filter((e) => e.seq > seq)
  t.equal(mine.length, 1)
  t.ok(stocked.includes(mine[0]!.query.chat_id!), 'the completion went to a ready chat')
  t.equal(h.app.qwenReadyChats.unstarted, 0, 'its start was reported: the refill does not wait for the bound')
  await h.app.qwenReadyChats.idle()
  t.equal(created(h).length, before + 1, 'one chat created to refill')
  t.equal(unused(h).length, 2, 'the stock is full again')
  t.ok(h.app.qwenReadyChats.counts.hits >= 1)
  // The used ready chat is deleted after its request like any other one-shot chat.
  t.ok(await until(() => deleted(h).includes(mine[0]!.query.chat_id!)), 'deleted after use')
})

t.test('what is kept warm is learned from traffic: the model and chat type asked for, for every usable identity', async (t) => {
  const h = await ready(t, { accounts: 2 })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  t.equal(unused(h, 0).length, 2)
  t.equal(unused(h, 1).length, 2)
  const models = new Set(created(h).map((e) => (e.body as { models: string[] }).models[0]))
  t.same([...models], ['qwen3-max'], 'nothing for models nobody used')
  // Another model in demand: warmed as well.
  await ask(h, { model: 'qwen3-coder-plus' })
  await h.app.qwenReadyChats.idle()
  const plus = (i: number): number => h.sim.chats(h.sim.accounts[i]!.email).filter((c) => c.turns === 0 && c.model === 'qwen3-coder-plus').length
  t.equal(plus(0), 2)
  t.equal(plus(1), 2)
})

t.test('a background creation that fails is logged and waits out a backoff; requests are not affected', async (t) => {
  const lines: string[] = []
  const h = await harness(t, { sim: { demoAccounts: 2 }, gateway: { conversationMode: 'fold', readyChatsPerIdentity: 2 } })
  const orig = h.app.log.warn.bind(h.app.log)
  h.app.log.warn = ((obj: unknown, msg?: string) => { lines.push(`${msg ?? ''} ${JSON.stringify(obj)}`); return orig(obj as object, msg) }) as typeof h.app.log.warn
  h.sim.queue(h.sim.accounts[1]!.email, { endpoint: 'chats_new', fail: { status: 500 } })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  t.ok(h.app.qwenReadyChats.counts.failed >= 1)
  t.ok(lines.some((l) => l.includes('ready chats: background work failed')), 'logged')
  t.equal(unused(h, 0).length, 2, 'the other identity is stocked')
  t.equal(h.app.qwenPool.health(h.app.qwenPool.identities[1]!).state, 'healthy', 'no breaker failure for a background creation')
  await ask(h)
})

t.test('one chat is never handed to two requests', async (t) => {
  const h = await ready(t)
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(h, { messages: [{ role: 'user', content: `question ${i}` }] })))
  t.equal(answers.length, 8)
  const ids = completions(h).map((e) => e.query.chat_id)
  t.equal(new Set(ids).size, ids.length, 'every completion in its own chat')
  t.ok(completions(h).every((e) => e.status === 200), 'no chat was busy')
})

t.test('a ready chat the upstream refuses is dropped and the request creates one inline', async (t) => {
  const h = await ready(t)
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const stocked = unused(h)
  // The upstream forgets the chats behind the gateway's back.
  h.sim.reset()
  const text = await ask(h, { stream: true })
  t.equal(sseData(text).at(-1), '[DONE]', 'the client got its answer')
  const calls = completions(h)
  t.equal(calls[0]!.status, 404, 'the ready chat was refused')
  t.ok(stocked.includes(calls[0]!.query.chat_id!))
  t.equal(calls.at(-1)!.status, 200)
  t.notOk(stocked.includes(calls.at(-1)!.query.chat_id!), 'answered in a chat created inline')
  t.equal(h.app.qwenReadyChats.unstarted, 0, 'the refused chat no longer holds refills back')
  t.equal(h.app.qwenPool.health(h.app.qwenPool.identities[0]!).state, 'healthy', 'the breaker did not count it')
})

t.test('an upstream failure in a ready chat is no refusal: it fails over and counts for the breaker', async (t) => {
  const h = await ready(t)
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const stocked = unused(h)
  for (let k = 0; k < 3; k++) {
    h.sim.queue(h.sim.accounts[0]!.email, { fail: { status: 500 } })
    const res = await postJson(`${h.url}/v1/chat/completions`, body())
    t.equal(res.status, 502, 'the failure reaches the client')
    await res.text()
  }
  t.ok(stocked.includes(completions(h)[1]!.query.chat_id!), 'the first failure was in a ready chat')
  t.equal(h.app.qwenReadyChats.unstarted, 0, 'a failed ready chat no longer holds refills back')
  t.equal(h.app.qwenPool.health(h.app.qwenPool.identities[0]!).state, 'degraded', 'the breaker counted every failure')
})

t.test('chats older than READY_CHAT_MAX_AGE_MS are discarded (deleted), never handed out', async (t) => {
  let now = Date.now()
  const h = await ready(t, { gateway: { readyChatMaxAgeMs: 1000, now: () => now } })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const stale = unused(h)
  t.equal(stale.length, 2)
  now += 5000
  const seq = h.sim.log().at(-1)!.seq
  await ask(h)
  const mine = completions(h).filter((e) => e.seq > seq)
  t.notOk(stale.includes(mine[0]!.query.chat_id!), 'a stale chat was not used')
  t.ok(await until(() => stale.every((id) => deleted(h).includes(id))), 'the stale chats are deleted upstream')
  await h.app.qwenReadyChats.idle()
  t.equal(unused(h).length, 2, 'fresh ones replace them')
})

t.test('an identity that starts cooling down loses its ready chats', async (t) => {
  const h = await ready(t, { accounts: 2, gateway: { chatDeletionRetryDelayMs: 20 } })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const [x] = h.sim.accounts
  const ofX = unused(h, 0)
  t.equal(ofX.length, 2)
  // x is rate limited on its next completion: the request fails over, x cools down.
  h.sim.queue(x!.email, { fail: 'rate_limited' })
  await ask(h)
  await ask(h)
  t.ok(h.app.qwenPool.eligibility(h.app.qwenPool.identities[0]!).kind === 'blocked', 'x cools down')
  t.ok(await until(() => ofX.every((id) => deleted(h).includes(id))), 'its ready chats are deleted')
  await h.app.qwenReadyChats.idle()
  t.equal(unused(h, 0).length, 0, 'and no new ones are made while it cools down')
  t.equal(unused(h, 1).length, 2, 'the other identity keeps its stock')
})

t.test('the scheduled sweep spares ready chats', async (t) => {
  const h = await ready(t, { gateway: { chatDeletion: 'scheduled', chatDeletionMaxAgeMs: 0 } })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const stocked = unused(h)
  t.equal(stocked.length, 2)
  await new Promise((r) => setTimeout(r, 1100)) // the upstream dates chats in whole seconds
  const r = await h.app.qwenChatDeletion.sweep()
  t.equal(r.queued, 1, 'only the used chat')
  await h.app.qwenChatDeletion.flush(3000)
  t.same(unused(h).sort(), stocked.sort(), 'the ready chats are still there')
})

t.test('graceful close deletes the ready chats (single instance)', async (t) => {
  const h = await ready(t, { accounts: 2 })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const all = [...unused(h, 0), ...unused(h, 1)]
  t.equal(all.length, 4)
  await h.app.close()
  t.same(deleted(h).filter((id) => all.includes(id)).sort(), all.sort(), 'every ready chat deleted at close')
  t.equal(unused(h, 0).length + unused(h, 1).length, 0)
})

t.test('CHAT_DELETION=off leaves used chats alone but still deletes the ready ones at close', async (t) => {
  const h = await ready(t, { gateway: { chatDeletion: 'off' } })
  await ask(h)
  await h.app.qwenReadyChats.idle()
  const stocked = unused(h)
  t.equal(stocked.length, 2)
  await h.app.close()
  t.same(deleted(h).sort(), stocked.sort(), 'only the ready chats were deleted')
  t.equal(h.sim.chats(h.sim.accounts[0]!.email).length, 1, 'the used chat stays')
})

t.test('conversations continue in their own chat with ready chats on', async (t) => {
  const h = await ready(t, { gateway: { conversationMode: 'upstream' } })
  const first = JSON.parse(await ask(h)) as { choices: Array<{ message: { content: string } }> }
  await h.app.qwenReadyChats.idle()
  const n = completions(h).length
  await ask(h, { messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: first.choices[0]!.message.content }, { role: 'user', content: 'and then?' }] })
  const next = completions(h).slice(n)
  t.equal(next.length, 1)
  t.equal(next[0]!.query.chat_id, completions(h)[0]!.query.chat_id, 'the second turn went to the first chat')
  t.notOk(unused(h).includes(next[0]!.query.chat_id!))
})
