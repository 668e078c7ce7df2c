/**
 * `previous_response_id` on `/v1/responses` through the conversation map, with the `openai` SDK
 * (6.49.0 sends it as a body field of `responses.create`): the named answer's upstream chat goes on
 * with only the new input; unknown, superseded, expired, `store: false` and another caller's ids
 * are OpenAI's 400; a chat that cannot be continued now is a 503 (never a silent new chat).
 */
import OpenAI, { APIError, BadRequestError } from 'openai'
import t, { type Test } from 'tap'
import { responseKey } from '../src/turn/previous.js'
import { harness, postJson, type Harness } from './helpers/setup.js'

const COMPLETIONS = '/api/v2/chat/completions'

function client (h: Harness, apiKey = 'x'): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0, timeout: 20_000 })
}

/** What each answered upstream completion request carried. */
function sent (h: Harness): Array<{ account: string | null; chatId: string; parent: string | null; content: string }> {
  return h.sim.log().filter((e) => e.path === COMPLETIONS && e.status === 200).map((e) => {
    const b = e.body as { chat_id: string; parent_id: string | null; messages: Array<{ content: string }> }
    return { account: e.account, chatId: b.chat_id, parent: b.parent_id ?? null, content: b.messages[0]!.content }
  })
}

/** The SDK's error for `fn`, checked to be an `APIError`. */
async function apiError (t: Test, fn: () => Promise<unknown>): Promise<APIError> {
  try {
    await fn()
  } catch (err) {
    t.type(err, APIError)
    return err as APIError
  }
  t.fail('expected an error')
  throw new Error('unreachable')
}

const notFound = (id: string) => ({ message: `Previous response with id '${id}' not found.`, type: 'invalid_request_error', param: 'previous_response_id', code: 'previous_response_not_found' })

t.test('three turns chained by previous_response_id continue one upstream chat with only the new input', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const r1 = await openai.responses.create({ model: 'qwen3-max', instructions: 'Be brief.', input: 'first question' })
  t.match(r1.id, /^resp_/)
  t.equal((r1 as unknown as { store: boolean }).store, true, 'remembered (the SDK types leave `store` out)')
  t.equal(r1.previous_response_id, null)
  const r2 = await openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'second question' })
  // The SDK sends it as a body field: the answer echoes it from the request body.
  t.equal(r2.previous_response_id, r1.id, 'echoed')
  t.match(r2.output_text, /answering "second question".*\[turn 2 of this chat, which began with "Be brief\. first question"\]/)
  // Streamed, with message items as the input.
  const stream = await openai.responses.create({ model: 'qwen3-max', previous_response_id: r2.id, input: [{ role: 'user', content: [{ type: 'input_text', text: 'third question' }] }], stream: true })
  let text = ''
  let r3: OpenAI.Responses.Response | undefined
  for await (const e of stream) {
    if (e.type === 'response.output_text.delta') text += e.delta
    if (e.type === 'response.completed') r3 = e.response
  }
  t.match(text, /\[turn 3 of this chat/)
  t.equal(r3?.previous_response_id, r2.id)
  const r4 = await openai.responses.create({ model: 'qwen3-max', previous_response_id: r3!.id, input: 'fourth question' })
  t.match(r4.output_text, /\[turn 4 of this chat/)

  const s = sent(h)
  t.equal(new Set(s.map((x) => x.chatId)).size, 1, 'one upstream chat')
  t.same(s.map((x) => x.content), ['Be brief.\n\nfirst question', 'second question', 'third question', 'fourth question'], 'only the new input is sent')
  t.equal(s[0]!.parent, null)
  t.ok(s.slice(1).every((x) => x.parent !== null), 'chained to the last answer')
  t.equal(h.sim.log().filter((e) => e.path === '/api/v2/chats/new').length, 1)

  // The chat moved on: an earlier response can no longer be continued.
  const e = await apiError(t, () => openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'branch' }))
  t.type(e, BadRequestError)
  t.match(e.error, notFound(r1.id))
})

t.test('a function call answered through previous_response_id: the tool output is the new turn', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const tools = [{ type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }]
  h.sim.queue(h.sim.accounts[0]!.email, { answer: '[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]' })
  h.sim.queue(h.sim.accounts[1]!.email, { answer: '[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]' })
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'weather in Paris?', tools })
  const call = r1.output.find((o) => o.type === 'function_call')
  t.ok(call, 'a function call')
  if (call?.type !== 'function_call') return
  const r2 = await openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, tools, input: [{ type: 'function_call_output', call_id: call.call_id, output: '21°C, sunny' }] })
  t.match(r2.output_text, /\[turn 2 of this chat/)
  const s = sent(h)
  t.equal(s[1]!.chatId, s[0]!.chatId)
  t.match(s[1]!.content, /^\[TOOL RESULT[^\]]*\]\n21°C, sunny\n\[END TOOL RESULT\]$/)
})

t.test('unknown, store: false, expired and another caller\'s ids: 400 previous_response_not_found', async (t) => {
  let now = 1_000_000
  const h = await harness(t, { gateway: { apiKey: 'alice:sk-alice|||bob:sk-bob', now: () => now, conversationTtlMs: 60_000 } })
  const alice = client(h, 'sk-alice')
  const bob = client(h, 'sk-bob')
  let e = await apiError(t, () => alice.responses.create({ model: 'qwen3-max', previous_response_id: 'resp_unknown', input: 'x' }))
  t.equal(e.status, 400)
  t.match(e.error, notFound('resp_unknown'))

  const unstored = await alice.responses.create({ model: 'qwen3-max', input: 'not kept', store: false })
  t.equal((unstored as unknown as { store: boolean }).store, false)
  e = await apiError(t, () => alice.responses.create({ model: 'qwen3-max', previous_response_id: unstored.id, input: 'x' }))
  t.match(e.error, notFound(unstored.id), 'store: false is not remembered')

  const r1 = await alice.responses.create({ model: 'qwen3-max', input: 'hello' })
  e = await apiError(t, () => bob.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.match(e.error, notFound(r1.id), 'another key')
  now += 61_000
  e = await apiError(t, () => alice.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.match(e.error, notFound(r1.id), 'expired')
  t.equal(sent(h).length, 2, 'no refused request reached the upstream')
})

t.test('CONVERSATION_MODE=fold remembers nothing: every id is unknown', async (t) => {
  const h = await harness(t, { gateway: { conversationMode: 'fold' } })
  const openai = client(h)
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'hello' })
  t.equal((r1 as unknown as { store: boolean }).store, false)
  const e = await apiError(t, () => openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.match(e.error, notFound(r1.id))
})

t.test('the account that holds the chat cannot serve: 503 previous_response_unavailable, no new chat', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'alice:sk-alice' } })
  const openai = client(h, 'sk-alice')
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'hello' })
  const k = h.sim.accounts.findIndex((x) => x.email === sent(h)[0]!.account)
  h.app.qwenStore.identities.record(h.app.qwenPool.identities[k]!.id, { kind: 'rate_limited', error: 'test', retryAfterMs: 60_000 }, false, Date.now())
  const res = await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', previous_response_id: r1.id, input: 'x', stream: true }, { authorization: 'Bearer sk-alice' })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  const body = await res.json() as { error: Record<string, unknown> }
  t.match(body.error, { type: 'server_error', param: 'previous_response_id', code: 'previous_response_unavailable', message: /cannot be continued right now: the account .* \(identity_unavailable\)/ })
  t.equal(sent(h).length, 1, 'nothing was folded into a new chat')
  // The entry stays: once the account serves again, the conversation goes on.
  const prev = await h.app.qwenStore.conversations.begin(responseKey('key:alice', r1.id), 'peek', Date.now(), 'pointer')
  t.equal(prev?.ref.chatId, sent(h)[0]!.chatId)
  await h.app.qwenStore.conversations.unlock(prev!.ref.chatId, 'peek')
})

t.test('two requests on one previous response at once: one continues, the other is a 503 previous_response_busy', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'hello' })
  for (const a of h.sim.accounts) h.sim.queue(a.email, { frameDelayMs: 30 })
  const results = await Promise.allSettled([
    openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'one' }),
    openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'two' }),
  ])
  const ok = results.filter((r) => r.status === 'fulfilled')
  const failed = results.flatMap((r) => r.status === 'rejected' ? [r.reason as APIError] : [])
  t.equal(ok.length, 1)
  t.equal(failed.length, 1)
  t.equal(failed[0]!.status, 503)
  t.match(failed[0]!.error, { code: 'previous_response_busy', param: 'previous_response_id' })
})

t.test('a chat the upstream refuses: its error, the entry abandoned (the id is then unknown)', async (t) => {
  const h = await harness(t)
  const ended: string[] = []
  h.app.qwenEvents.on('conversation.expired', (e) => { ended.push(e.reason) })
  const openai = client(h)
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'hello' })
  h.sim.reset() // the upstream forgets every chat
  const e = await apiError(t, () => openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.not(e.status, 200)
  t.not(e.status, 400)
  t.same(ended, ['abandoned'])
  const again = await apiError(t, () => openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.match(again.error, notFound(r1.id))
})

t.test('a continued answer that fails before the client got anything: the upstream\'s error, not a new chat', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'hello' })
  h.sim.queue(sent(h)[0]!.account!, { errorAfterFrames: 2 })
  const e = await apiError(t, () => openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.equal(e.status, 502)
  t.match(e.error, { code: 'upstream_error' })
  t.equal(h.sim.log().filter((x) => x.path === '/api/v2/chats/new').length, 1, 'no new chat')
  const again = await apiError(t, () => openai.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.match(again.error, notFound(r1.id), 'the entry was abandoned')
})

t.test('full history without previous_response_id continues too (Codex sends store: false and the whole input)', async (t) => {
  const h = await harness(t)
  const openai = client(h)
  const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'first' }]
  const r1 = await openai.responses.create({ model: 'qwen3-max', input, store: false })
  input.push(...r1.output as OpenAI.Responses.ResponseInputItem[], { role: 'user', content: 'second' })
  const r2 = await openai.responses.create({ model: 'qwen3-max', input, store: false })
  t.match(r2.output_text, /\[turn 2 of this chat/)
  t.equal(sent(h)[1]!.content, 'second')
})

t.test('client mode: a response id belongs to the caller\'s own credential', async (t) => {
  const h = await harness(t, { gateway: { serverMode: false, cookies: [] } })
  const [a, b] = h.sim.accounts
  const mine = client(h, `;${a!.cookie}`)
  const r1 = await mine.responses.create({ model: 'qwen3-max', input: 'hello' })
  const e = await apiError(t, () => client(h, `;${b!.cookie}`).responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'x' }))
  t.match(e.error, notFound(r1.id), 'another caller')
  const r2 = await mine.responses.create({ model: 'qwen3-max', previous_response_id: r1.id, input: 'and then?' })
  t.match(r2.output_text, /\[turn 2 of this chat/)
  const s = sent(h)
  t.equal(s[1]!.chatId, s[0]!.chatId)
  t.equal(s[1]!.account, a!.email)
})

t.test('a forced tool call that comes back invalid on a previous_response_id turn is not retried in a new chat without the history', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  const openai = client(h)
  const r1 = await openai.responses.create({ model: 'qwen3-max', input: 'remember the number 7' })
  const before = sent(h).length
  const bad = '[TOOL CALL]{"name":"get_weather","arguments":{}}[END TOOL CALL]'
  h.sim.queue(email, { answer: bad }, { answer: bad })
  const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false }]
  const res = await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', previous_response_id: r1.id, input: 'weather?', tools, tool_choice: 'required', stream: true })
  const text = await res.text()
  t.match(text, /tool_call_invalid/, 'the invalid call is reported')
  const after = sent(h).slice(before)
  t.equal(after.length, 1, 'one upstream turn: no corrective retry')
  t.equal(after[0]!.chatId, sent(h)[0]!.chatId, 'in the chat that holds the history')

  // Non-stream: the same, as a status (the entry is gone: the chat now ends with the invalid answer).
  const r2 = await openai.responses.create({ model: 'qwen3-max', input: 'again' })
  h.sim.queue(email, { answer: bad })
  const before2 = sent(h).length
  const res2 = await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', previous_response_id: r2.id, input: 'weather?', tools, tool_choice: 'required' })
  t.equal(res2.status, 502)
  t.match(await res2.json(), { error: { code: 'tool_call_invalid' } })
  t.equal(sent(h).length - before2, 1, 'no corrective retry')
})
