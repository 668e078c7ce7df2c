/** The conversation map (bounds, TTL, events, lock), the conversation key and the turn planner on their own. */
import t from 'tap'
import { canonicalJson, conversationKey, declaredTools, ownerOf, splitTurn } from '../src/conversations/hash.js'
import { MemoryConversationStore, type ConversationEnded } from '../src/conversations/store.js'
import type { ChatMessage } from '../src/schemas.js'
import { MarkerSet, DEFAULT_TOOL_MARKERS } from '../src/tools/markers.js'
import { TurnPlanner } from '../src/turn/plan.js'

const ref = (chatId: string) => ({ identity: 'id-1', chatId, responseId: `r-${chatId}` })

function store (o: Partial<{ ttlMs: number; maxEntries: number; maxBytes: number; lockTtlMs: number }> = {}): { s: MemoryConversationStore; ended: ConversationEnded[] } {
  const s = new MemoryConversationStore({ ttlMs: 1000, maxEntries: 100, maxBytes: 1_000_000, ...o })
  const ended: ConversationEnded[] = []
  s.subscribe((e) => { ended.push(e) })
  return { s, ended }
}

t.test('entries live for the TTL; expiry is announced on get and by the sweep', async (t) => {
  const { s, ended } = store()
  await s.put('a', ref('c1'), 0)
  await s.put('b', ref('c2'), 500)
  t.same(await s.get('a', 999), ref('c1'))
  t.equal(await s.get('a', 1000), undefined)
  t.same(ended.map((e) => [e.key, e.reason]), [['a', 'expired']])
  t.equal(await s.sweep(1499), 0)
  t.equal(await s.sweep(1500), 1)
  t.equal(s.size, 0)
  t.equal(await s.get('missing', 0), undefined)
})

t.test('bounded in entries and bytes: the oldest are evicted and announced', async (t) => {
  const { s, ended } = store({ maxEntries: 2 })
  await s.put('a', ref('c1'), 0)
  await s.put('b', ref('c2'), 1)
  await s.put('c', ref('c3'), 2)
  t.equal(s.size, 2)
  t.same(ended.map((e) => [e.ref.chatId, e.reason]), [['c1', 'evicted']])
  const small = store({ maxBytes: 1024 })
  for (let i = 0; i < 10; i++) await small.s.put(`k${i}`, ref(`c${i}`), i)
  t.ok(small.s.size < 10 && small.s.size >= 1)
  t.equal(small.ended.length, 10 - small.s.size)
})

t.test('put under the same key: refreshed, and a replaced chat is announced', async (t) => {
  const { s, ended } = store()
  await s.put('a', ref('c1'), 0)
  await s.put('a', ref('c1'), 800)
  t.same(await s.get('a', 1500), ref('c1'), 'the TTL starts again')
  t.equal(ended.length, 0)
  await s.put('a', ref('c2'), 900)
  t.same(ended.map((e) => [e.ref.chatId, e.reason]), [['c1', 'evicted']])
})

t.test('delete: silent when the chat moves on, announced when abandoned', async (t) => {
  const { s, ended } = store()
  await s.put('a', ref('c1'), 0)
  await s.put('b', ref('c2'), 0)
  await s.delete('a')
  await s.delete('b', 'abandoned')
  await s.delete('nothing', 'abandoned')
  t.equal(s.size, 0)
  t.same(ended.map((e) => [e.ref.chatId, e.reason]), [['c2', 'abandoned']])
})

t.test('the generation lock: one holder per chat, released by its holder, free after its TTL', async (t) => {
  const { s } = store({ lockTtlMs: 100 })
  t.ok(await s.lock('c1', 'h1', 0))
  t.notOk(await s.lock('c1', 'h2', 50))
  t.ok(await s.lock('c1', 'h1', 50), 'the holder may take it again')
  t.ok(await s.lock('c2', 'h2', 50), 'another chat')
  await s.unlock('c1', 'h2')
  t.notOk(await s.lock('c1', 'h2', 60), 'only the holder unlocks')
  await s.unlock('c1', 'h1')
  t.ok(await s.lock('c1', 'h2', 60))
  t.ok(await s.lock('c1', 'h3', 200), 'a lock never given back expires')
  await s.sweep(1000)
  t.ok(await s.lock('c2', 'h4', 1000), 'the sweep drops expired locks')
  const unsub = s.subscribe(() => { t.fail('unsubscribed') })
  unsub()
  await s.put('x', ref('c9'), 0)
  await s.get('x', 5000)
})

t.test('the key: normalised, and specific to the caller, model and tools', async (t) => {
  const base: ChatMessage[] = [
    { role: 'system', content: 'sys' },
    { role: 'user', content: [{ type: 'text', text: 'hi' }] as never },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"b":1,"a":[2,{"d":3,"c":4}]}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
  ]
  const k = conversationKey('key:a', 'm', ['f'], base)
  const same: ChatMessage[] = [
    { role: 'developer', content: ' sys ' },
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: '<think>x</think>', reasoning_content: 'x', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":[2,{"c":4,"d":3}],"b":1}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'ok' }] as never },
  ]
  t.equal(conversationKey('key:a', 'm', ['f'], same), k)
  t.not(conversationKey('key:b', 'm', ['f'], base), k)
  t.not(conversationKey('key:a', 'n', ['f'], base), k)
  t.not(conversationKey('key:a', 'm', ['g'], base), k)
  t.not(conversationKey('key:a', 'm', ['f'], [...base.slice(0, 3), { role: 'tool', tool_call_id: 'call_1', content: 'no' }]), k)
  const legacy: ChatMessage[] = [{ role: 'assistant', content: '', function_call: { name: 'f', arguments: 'not json' } }, { role: 'function', name: 'f', content: 'r' }]
  t.match(conversationKey('o', 'm', [], legacy), /^[0-9a-f]{64}$/)
  t.not(conversationKey('o', 'm', [], [{ role: 'user', content: [{ type: 'refusal', refusal: 'no' }] as never }]), conversationKey('o', 'm', [], [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] as never }]))
  t.equal(canonicalJson({ b: undefined, a: [1, null] }), '{"a":[1,null]}')
  t.equal(canonicalJson(undefined), 'null')
})

t.test('owner, declared tools and the split into history and new turn', async (t) => {
  t.equal(ownerOf({ kind: 'pool' }, 'alice'), 'key:alice')
  t.equal(ownerOf({ kind: 'pool' }, null), 'key:')
  const a = ownerOf({ kind: 'client', token: 't', cookie: undefined }, null)
  t.match(a, /^client:[0-9a-f]{64}$/)
  t.not(a, ownerOf({ kind: 'client', token: undefined, cookie: 'c' }, null))
  t.same(declaredTools({ tools: [{ function: { name: 'x' } }, {}], functions: [{ name: 'y' }, null] }), ['x', '', 'y', ''])
  t.same(declaredTools({}), [])
  const u = (content: string): ChatMessage => ({ role: 'user', content })
  const asst: ChatMessage = { role: 'assistant', content: 'a' }
  t.equal(splitTurn([]), undefined)
  t.equal(splitTurn([u('x')]), undefined, 'a first turn')
  t.equal(splitTurn([u('x'), asst]), undefined, 'ends with the assistant')
  t.same(splitTurn([u('x'), asst, u('y')]), { history: [u('x'), asst], turn: [u('y')] })
  const tool: ChatMessage = { role: 'tool', tool_call_id: 'c', content: 'r' }
  t.same(splitTurn([u('x'), asst, tool, tool]), { history: [u('x'), asst], turn: [tool, tool] })
  t.equal(splitTurn([tool]), undefined)
})

t.test('the planner: fold mode and one-shot requests plan nothing; a store failure is logged, not thrown', async (t) => {
  const logs: string[] = []
  const { s } = store()
  const deps = { store: s, mode: 'upstream' as const, now: () => 0, log: (_f: Record<string, unknown>, m: string) => { logs.push(m) } }
  const input = { owner: 'o', model: 'm', tools: [], messages: [{ role: 'user', content: 'x' }], markers: new MarkerSet(DEFAULT_TOOL_MARKERS) }
  t.equal(await new TurnPlanner({ ...deps, mode: 'fold' }).begin(input, 'r'), undefined)
  t.equal(await new TurnPlanner(deps).begin(undefined, 'r'), undefined)
  const turn = (await new TurnPlanner(deps).begin(input, 'r'))!
  t.equal(turn.continuation, undefined)
  await turn.fallback('nothing to fall back from', true)
  await turn.remember({ content: 'a', toolCalls: [], identity: 'i', chatId: 'c', responseId: undefined })
  t.equal(s.size, 0, 'no response id, nothing remembered')
  const broken = { ...s, put: async () => { throw new Error('down') }, delete: async () => {} } as unknown as MemoryConversationStore
  const t2 = (await new TurnPlanner({ ...deps, store: broken }).begin(input, 'r'))!
  await t2.remember({ content: 'a', toolCalls: [], identity: 'i', chatId: 'c', responseId: 'r1' })
  t.same(logs, ['conversation not remembered: the store failed'])
})

t.test('holds: whether a live entry still continues in a chat', async (t) => {
  const { s } = store()
  await s.put('a', ref('c1'), 0)
  t.ok(await s.holds('c1', 999))
  t.notOk(await s.holds('c1', 1000), 'expired')
  t.notOk(await s.holds('c2', 0))
})
