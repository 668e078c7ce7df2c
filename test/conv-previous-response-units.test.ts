/** The `previous_response_id` pieces on their own: the pointer entries, their resolution, and a planned turn that cannot fold. */
import t from 'tap'
import { MemoryConversationStore } from '../src/conversations/store.js'
import { GatewayError, UpstreamError } from '../src/errors.js'
import { DEFAULT_TOOL_MARKERS, MarkerSet } from '../src/tools/markers.js'
import { TurnPlanner } from '../src/turn/plan.js'
import { previousResponse, previousUnavailable, responseKey, responsePointer } from '../src/turn/previous.js'

const store = () => new MemoryConversationStore({ ttlMs: 1000, maxEntries: 100, maxBytes: 1_000_000 })
const ref = { identity: 'id-1', chatId: 'chat-1', responseId: 'up-1' }
const input = (o: object = {}) => ({ owner: 'key:a', model: 'm', tools: [], messages: [{ role: 'user', content: 'next' }], markers: new MarkerSet(DEFAULT_TOOL_MARKERS), ...o })

t.test('a response id leads through its pointer to its entry; a pointer whose entry is gone, or another owner\'s, leads nowhere (400)', async (t) => {
  const s = store()
  const planner = new TurnPlanner({ store: s, mode: 'upstream', now: () => 10, log: () => {} })
  await s.put('entry', ref, 0)
  await s.put(responseKey('key:a', 'resp_1'), responsePointer('entry'), 0)
  t.same(await s.begin(responseKey('key:a', 'resp_1'), 'h', 10, 'pointer'), { key: 'entry', ref, locked: true })
  await s.unlock(ref.chatId, 'h')
  await t.rejects(planner.begin(input({ owner: 'key:b', previous: previousResponse('key:b', 'resp_1') }), 'r1'), { statusCode: 400, code: 'previous_response_not_found', param: 'previous_response_id', message: "Previous response with id 'resp_1' not found." })
  await s.delete('entry')
  await t.rejects(planner.begin(input({ previous: previousResponse('key:a', 'resp_1') }), 'r2'), { code: 'previous_response_not_found' })
})

t.test('previousUnavailable names the reason', async (t) => {
  t.match(previousUnavailable('r', 'chat_busy'), { statusCode: 503, code: 'previous_response_busy', headers: { 'retry-after': '1' }, message: /another request is still answering/ })
  t.match(previousUnavailable('r', 'identity_unavailable'), { code: 'previous_response_unavailable', message: /cannot serve right now \(identity_unavailable\)/ })
  t.match(previousUnavailable('r', 'the continued answer failed: boom'), { code: 'previous_response_unavailable', message: /right now: the continued answer failed: boom/ })
})

t.test('a previous-response turn: only its input, no fold on fallback, a chain: entry and a pointer after the answer', async (t) => {
  const s = store()
  const logs: string[] = []
  const planner = new TurnPlanner({ store: s, mode: 'upstream', now: () => 0, log: (_f, m) => { logs.push(m) } })
  const previous = previousResponse('key:a', 'resp_1')
  await s.put('entry', ref, 0)
  await s.put(previous.pointer, responsePointer('entry'), 0)
  const turn = (await planner.begin(input({ previous, responseId: 'resp_2' }), 'req-1'))!
  t.match(turn.continuation, { key: 'entry', ref, prompt: 'next', from: 0 })
  // The chat is locked: a second turn on it is refused, not folded.
  await t.rejects(planner.begin(input({ previous }), 'req-2'), { code: 'previous_response_busy' })
  t.equal(await turn.remember({ content: 'answer', toolCalls: [], identity: 'id-1', chatId: 'chat-1', responseId: 'up-2' }), true)
  t.equal(await s.get('entry', 0), undefined, 'the old entry moved on')
  await turn.release()
  const next = (await s.begin(responseKey('key:a', 'resp_2'), 'peek', 0, 'pointer'))!
  t.match(next, { key: /^chain:[0-9a-f]{64}$/, ref: { chatId: 'chat-1', responseId: 'up-2' } })
  await s.unlock('chat-1', 'peek')

  // Fallbacks throw: the upstream's error as it is, or a 503 naming the reason.
  const refused = new UpstreamError('upstream_error', 'parent gone')
  const a = (await planner.begin(input({ previous: previousResponse('key:a', 'resp_2') }), 'req-3'))!
  await t.rejects(a.fallback('upstream refused the continuation', true, refused), refused)
  t.equal(await s.get(next.key, 0), undefined, 'abandoned')
  await s.put('entry-2', ref, 0)
  await s.put(responseKey('key:a', 'resp_3'), responsePointer('entry-2'), 0)
  const b = (await planner.begin(input({ previous: previousResponse('key:a', 'resp_3') }), 'req-4'))!
  await t.rejects(b.fallback('the continued answer failed: boom', true), GatewayError)
  t.same(logs, ['previous response not continued', 'previous response not continued'])
  // Locks were given back.
  t.equal(await s.lock('chat-1', 'someone', 0), true)
})

t.test('a superseded or unknown previous id is not found and takes no lock; the pointer, the entry and the lock are one step', async (t) => {
  const s = store()
  const logs: string[] = []
  const planner = new TurnPlanner({ store: s, mode: 'upstream', now: () => 0, log: (f, m) => { logs.push(`${m}:${String((f as { reason?: string }).reason)}`) } })
  await t.rejects(planner.begin(input({ previous: previousResponse('key:a', 'resp_none') }), 'req-0'), { statusCode: 400, code: 'previous_response_not_found' })
  await s.put('entry', ref, 0)
  await s.put(responseKey('key:a', 'resp_1'), responsePointer('entry'), 0)
  // Another replica's turn moved the chat on: the entry went (one entry per chat).
  await s.delete('entry')
  await s.put('entry-next', { ...ref, responseId: 'up-9' }, 0)
  await t.rejects(planner.begin(input({ previous: previousResponse('key:a', 'resp_1') }), 'req-1'), { statusCode: 400, code: 'previous_response_not_found' })
  t.equal(await s.lock('chat-1', 'someone', 0), true, 'no lock was taken')
  await s.unlock('chat-1', 'someone')

  // A client-sent history: of two concurrent turns one continues, the other folds (chat_busy);
  // the looked-up entry is never read again separately (one step: begin).
  const messages = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'next' }]
  const { conversationKey, splitTurn } = await import('../src/conversations/hash.js')
  const key = conversationKey('key:a', 'm', [], splitTurn(messages as never)!.history)
  await s.put(key, ref, 0)
  const calls: string[] = []
  const counted = Object.assign(Object.create(s) as MemoryConversationStore, {
    get: async (k: string, now: number) => { calls.push('get'); return await s.get(k, now) },
    lock: async (...a: Parameters<MemoryConversationStore['lock']>) => { calls.push('lock'); return await s.lock(...a) },
    begin: async (...a: Parameters<MemoryConversationStore['begin']>) => { calls.push('begin'); return await s.begin(...a) },
  })
  const p2 = new TurnPlanner({ store: counted, mode: 'upstream', now: () => 0, log: (f, m) => { logs.push(`${m}:${String((f as { reason?: string }).reason)}`) } })
  const [one, two] = await Promise.all([p2.begin(input({ messages }), 'req-2'), p2.begin(input({ messages }), 'req-3')])
  t.same(calls, ['begin', 'begin'], 'one store step each')
  t.ok(one!.continuation, 'the first continues')
  t.equal(two!.continuation, undefined, 'the second folds')
  t.same(logs, ['conversation folded into a new chat:chat_busy'])
  t.equal(await one!.remember({ content: 'answer', toolCalls: [], identity: 'id-1', chatId: 'chat-1', responseId: 'up-2' }), true)
  t.equal(await s.lock('chat-1', 'someone', 0), true, 'remember gave the lock back')
  await s.unlock('chat-1', 'someone')
  const three = (await p2.begin(input({ messages }), 'req-4'))!
  t.equal(three.continuation, undefined, 'the history moved on: nothing to continue')
  t.equal(logs.length, 1)
})
