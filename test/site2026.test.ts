/** The 2026 site (PROTOCOL-2026): what the client sends, what the strict simulator refuses, and how the gateway copes. */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Agent, request } from 'undici'
import { UpstreamError } from '../src/errors.js'
import { ModelCatalog } from '../src/models.js'
import { FrameDecoder } from '../src/pipeline/index.js'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import { outcomeOf } from '../src/turn/lease.js'
import { UpstreamClient } from '../src/upstream/client.js'
import { CandidateLock, classifyBody, modelInfo, readFrame, type Frame, type UpstreamModel } from '../src/upstream/protocol.js'
import { harness, postJson, sseData } from './helpers/setup.js'

const dispatcher = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 })
t.teardown(() => dispatcher.close())

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const chatBody = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra })
const completions = <T extends { path: string }>(log: T[]): T[] => log.filter((e) => e.path === '/api/v2/chat/completions')

async function sim (tt: { teardown (fn: () => unknown): void }, site: '2025' | '2026' = '2026'): Promise<Simulator> {
  const s = await startSimulator({ site })
  tt.teardown(() => s.close())
  return s
}

function client (s: Simulator, extra: Partial<ConstructorParameters<typeof UpstreamClient>[0]> = {}): UpstreamClient {
  return new UpstreamClient({ baseUrl: s.url, dispatcher, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxBufferBytes: 1024 * 1024, ...extra })
}

/** A raw call to the simulator with the given headers. */
async function raw (s: Simulator, path: string, body: unknown, headers: Record<string, string>) {
  const res = await request(`${s.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), dispatcher,
  })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.statusCode, type: String(res.headers['content-type']), text, json }
}

t.test('client: the 2026 headers and body, cookie and Bearer at once, no bx-*', async (t) => {
  const s = await sim(t)
  const c = client(s, { webVersion: '0.2.99' })
  const cookie = s.accounts[0]!.cookie
  const { token } = await c.fetchToken(cookie)
  const cred = { token, cookie }
  const chatId = await c.createChat(cred, 'qwen3-max', 't2t')
  const { stream } = await c.openCompletion(cred, { chatId, model: 'qwen3-max', chatType: 't2t', thinking: false, content: 'hi', parentId: null })
  while (await stream.next());
  const log = s.log()
  const create = log.find((e) => e.path === '/api/v2/chats/new')!
  const comp = completions(log)[0]!
  for (const e of [create, comp]) {
    t.equal(e.headers.source, 'web')
    t.equal(e.headers.version, '0.2.99', 'the configured web version')
    t.match(e.headers['x-request-id'], UUID)
    t.ok(e.headers.timezone && /GMT/.test(e.headers.timezone), 'timezone header')
    t.match(e.headers.authorization, /^Bearer /)
    t.match(e.headers.cookie, /^token=/)
    t.equal(e.headers['accept-encoding'], 'identity')
    t.notOk(Object.keys(e.headers).some((k) => k.startsWith('bx-')), 'no bx-* header')
  }
  t.equal(create.headers.referer, 'https://chat.qwen.ai/c/new-chat')
  t.equal(comp.headers.referer, `https://chat.qwen.ai/c/${chatId}`)
  t.equal(comp.headers.accept, 'application/json')
  const b = comp.body as any
  t.equal(b.version, '2.1')
  t.equal(b.chat_id, chatId)
  t.equal(b.chatId, chatId)
  t.equal(b.parent_id, null)
  t.equal(b.parentId, null)
  t.equal(b.messages.length, 1)
  const m = b.messages[0]
  t.match(m.fid, UUID)
  t.equal(m.childrenIds.length, 1)
  t.match(m.childrenIds[0], UUID)
  t.same(m.feature_config, {
    thinking_enabled: false, output_schema: 'phase', thinking_mode: 'Fast', auto_thinking: false, thinking_format: 'summary', research_mode: 'normal', auto_search: false,
  })
  t.same((create.body as any).chatId, '')
})

t.test('simulator 2026: what the current site refuses', async (t) => {
  const s = await sim(t)
  const cookie = s.accounts[0]!.cookie
  const web = (): Record<string, string> => ({ cookie, source: 'web', version: '0.2.81', 'x-request-id': randomUUID() })
  const newChat = async (model = 'qwen3-max') => (await raw(s, '/api/v2/chats/new', { models: [model], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() }, web())).json.data.id as string
  const turn = (chatId: string, o: { model?: string; thinking?: boolean; parent?: string | null; content?: string } = {}) => ({
    stream: true, version: '2.1', incremental_output: true, chat_id: chatId, chatId, chat_mode: 'normal', model: o.model ?? 'qwen3-max',
    parent_id: o.parent ?? null, parentId: o.parent ?? null,
    messages: [{ role: 'user', content: o.content ?? 'hi', chat_type: 't2t', feature_config: { thinking_enabled: o.thinking ?? false, output_schema: 'phase' } }],
  })
  // Headers behind the 2026 switch: 200 + Bad_Request; cookie-only auth works.
  for (const missing of ['source', 'version', 'x-request-id']) {
    const h = web()
    delete h[missing]
    const r = await raw(s, '/api/v2/chats/new', { models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 }, h)
    t.equal(r.status, 200)
    t.match(r.json, { success: false, data: { code: 'Bad_Request' } }, `without ${missing}`)
  }
  const chatId = await newChat()
  const path = `/api/v2/chat/completions?chat_id=${chatId}`
  const bad = async (body: unknown, what: string, code = 'Bad_Request') => {
    const r = await raw(s, path, body, web())
    t.equal(r.status, 200, what)
    t.match(r.json, { success: false, data: { code } }, what)
  }
  await bad({ ...turn(chatId), version: undefined }, 'no version 2.1')
  await bad({ ...turn(chatId), chatId: 'other' }, 'chatId differs from chat_id')
  await bad({ ...turn(chatId), parentId: 'x' }, 'parentId differs from parent_id')
  const must = await newChat('qwen3.8-max-preview')
  const r0 = await raw(s, `/api/v2/chat/completions?chat_id=${must}`, turn(must, { model: 'qwen3.8-max-preview' }), web())
  t.match(r0.json, { success: false, data: { code: 'invalid_input' } }, 'think_skip false + thinking off')
  const ok = await raw(s, `/api/v2/chat/completions?chat_id=${must}`, turn(must, { model: 'qwen3.8-max-preview', thinking: true }), web())
  t.match(ok.type, /event-stream/)
  t.match(ok.text, /thinking_summary/, 'summary-format reasoning')
  // parent_id: the chat's latest response only.
  const first = await raw(s, path, turn(chatId), web())
  const created = JSON.parse(first.text.split('\n\n')[0]!.slice(6))['response.created']
  const second = await raw(s, path, turn(chatId, { parent: created.response_id }), web())
  const created2 = JSON.parse(second.text.split('\n\n')[0]!.slice(6))['response.created']
  await bad(turn(chatId, { parent: created.response_id }), 'an older response as parent')
  t.match((await raw(s, path, turn(chatId, { parent: created2.response_id }), web())).type, /event-stream/, 'the latest response as parent')
  // 128 KiB or more: the bare captcha JSON with HTTP 200, no SSE framing.
  const big = await raw(s, path, turn(chatId, { content: 'x'.repeat(128 * 1024) }), web())
  t.equal(big.status, 200)
  t.match(big.json, { ret: ['FAIL_SYS_USER_VALIDATE'], data: { url: /punish\?/ } })
  t.notMatch(big.text, /^data:/)
  // Both model lists, with think_skip, thinking_format, chat_type and a dated id.
  const flat = await request(`${s.url}/api/models`, { dispatcher }).then((r) => r.body.json()) as any
  const wrapped = await request(`${s.url}/api/v2/models/`, { dispatcher }).then((r) => r.body.json()) as any
  t.ok(Array.isArray(flat.data))
  t.equal(wrapped.success, true)
  t.same(wrapped.data.data.map((m: any) => m.id), flat.data.map((m: any) => m.id))
  const byId = new Map<string, any>(flat.data.map((m: any) => [m.id, m]))
  t.same(byId.get('qwen3.8-max-preview').info.meta.think_skip, { enable: false })
  t.equal(byId.get('qwen3.5-max-2026-03-08').name, 'Qwen3.5-Max-Preview')
  t.equal(byId.get('qwen3.5-max-2026-03-08').info.meta.thinking_format, 'summary')
  t.ok(byId.get('qwen3-max').info.meta.chat_type.includes('t2t'))
})

t.test('simulator 2025: the older rules and list', async (t) => {
  const s = await sim(t, '2025')
  const r = await raw(s, '/api/v2/chats/new', { models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 }, { cookie: s.accounts[0]!.cookie })
  t.equal(r.json.success, true, 'no web headers needed')
  const v2 = await request(`${s.url}/api/v2/models/`, { dispatcher })
  t.equal(v2.statusCode, 404)
  await v2.body.dump()
  const flat = await request(`${s.url}/api/models`, { dispatcher }).then((x) => x.body.json()) as any
  t.notOk(flat.data.some((m: any) => m.id === 'qwen3.8-max-preview'))
  const c = client(s)
  t.ok((await c.listModels({})).length > 0, 'the client reads the 2025 list')
})

t.test('client: the model list falls back to /api/v2/models/, not after an auth failure', async (t) => {
  const s = await sim(t)
  const c = client(s)
  const { token } = await c.fetchToken(s.accounts[0]!.cookie)
  s.queue(s.accounts[0]!.email, { endpoint: 'models', fail: { status: 404, body: '{"detail":"Not Found"}', contentType: 'application/json' } })
  const list = await c.listModels({ token })
  t.ok(list.some((m) => m.id === 'qwen3.5-max-2026-03-08'))
  t.same(s.log().map((e) => `${e.path} ${e.status}`).slice(-2), ['/api/models 404', '/api/v2/models/ 200'])
  s.clearLog()
  s.queue(s.accounts[0]!.email, { endpoint: 'models', fail: 'challenge_json' })
  const err = await c.listModels({ token }).catch((e: unknown) => e)
  t.equal((err as UpstreamError).kind, 'challenge')
  t.equal(s.log().length, 1, 'a challenge is not worth the other path')
})

t.test('models: dated ids under clean names, both forms accepted; think_skip forces thinking', async (t) => {
  const m = (id: string, name: string, meta: Record<string, unknown> = {}): UpstreamModel => ({ id, name, info: { meta: { chat_type: ['t2t'], ...meta } } })
  t.same(modelInfo(m('qwen3-max-2026-01-23', 'Qwen3-Max')), { id: 'qwen3-max', upstreamId: 'qwen3-max-2026-01-23', created: 0, thinking: false, search: false, vision: false })
  t.equal(modelInfo(m('qwen3-max', 'Qwen3-Max')).upstreamId, undefined, 'undated ids stay')
  t.equal(modelInfo(m('x-2026-01-01', 'Some Name!')).id, 'x-2026-01-01', 'an unusable name keeps the dated id')
  t.match(modelInfo(m('q', 'Q', { think_skip: { enable: false } })), { thinking: true, mustThink: true })
  t.notOk(modelInfo(m('q', 'Q', { think_skip: { enable: true } })).mustThink)
  const catalog = new ModelCatalog({
    ttlMs: 60_000, aliases: {}, now: Date.now, onError: () => {},
    fetch: async () => [m('qwen3-max-2026-01-23', 'Qwen3-Max'), m('qwen3-plus', 'Qwen3-Plus'), m('qwen3-plus-2026-02-02', 'Qwen3-Plus')],
  })
  await catalog.refresh(true)
  const ids = (await catalog.list()).map((e) => e.id)
  t.ok(ids.includes('qwen3-max') && !ids.includes('qwen3-max-2026-01-23'), 'listed under the clean name')
  t.ok(ids.includes('qwen3-plus') && ids.includes('qwen3-plus-2026-02-02'), 'a clean name already taken keeps the dated id')
  t.equal((await catalog.resolve('qwen3-max')).base, 'qwen3-max-2026-01-23')
  t.equal((await catalog.resolve('qwen3-max-2026-01-23')).base, 'qwen3-max-2026-01-23')
  t.equal((await catalog.resolve('qwen3-plus')).base, 'qwen3-plus')
})

t.test('gateway: a dated model by either name, and a must-think model thinks even with reasoning_effort none', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const models = await (await fetch(`${h.url}/v1/models`)).json() as any
  const ids: string[] = models.data.map((m: any) => m.id)
  t.ok(ids.includes('qwen3.5-max-preview') && !ids.includes('qwen3.5-max-2026-03-08'))
  for (const name of ['qwen3.5-max-preview', 'qwen3.5-max-2026-03-08']) {
    const res = await postJson(`${h.url}/v1/chat/completions`, chatBody(name))
    t.equal(res.status, 200, name)
    t.equal((await res.json() as any).model, name, 'the requested name is echoed')
  }
  t.same(completions(h.sim.log()).map((e) => (e.body as any).model), ['qwen3.5-max-2026-03-08', 'qwen3.5-max-2026-03-08'], 'the upstream gets the dated id')
  const res = await postJson(`${h.url}/v1/chat/completions`, chatBody('qwen3.8-max-preview', { reasoning_effort: 'none' }))
  t.equal(res.status, 200)
  const j = await res.json() as any
  t.ok(j.choices[0].message.content.length > 0)
  t.ok(j.choices[0].message.reasoning_content.length > 0, 'reasoning shows: the upstream must think')
  t.equal((completions(h.sim.log()).at(-1)!.body as any).messages[0].feature_config.thinking_enabled, true)
})

t.test('interleaved candidates: candidate "0" wins even when "1" comes first, and is the next parent', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  for (const stream of [false, true]) {
    h.sim.queue(email, { interleave: 'reversed', answer: 'the answer' })
    const res = await postJson(`${h.url}/v1/chat/completions`, chatBody('qwen3-max', { stream }))
    const content = stream
      ? sseData(await res.text()).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join('')
      : (await res.json() as any).choices[0].message.content
    t.equal(content, 'the answer', `stream ${stream}`)
  }
  // The decoder's response id (the parent of a next turn) is candidate 0's.
  const created = (id: string, index: string): Frame => ({ 'response.created': { chat_id: 'c', parent_id: 'p', response_id: id, response_index: index } })
  const delta = (id: string, content: string): Frame => ({ choices: [{ delta: { content, phase: 'answer' } }], response_id: id })
  const d = new FrameDecoder()
  const out = [created('r1', '1'), delta('r1', 'X'), created('r0', '0'), delta('r0', 'A'), delta('r1', 'Y')].flatMap((f) => d.push(f))
  t.same(out.filter((e) => e.kind === 'content').map((e) => (e as { text: string }).text), ['A'])
  t.equal(d.responseId, 'r0')
  const lock = new CandidateLock()
  t.ok(lock.accepts(readFrame(delta('first', 'a'))), 'without response.created: the first id that sends a delta')
  t.notOk(lock.accepts(readFrame(delta('second', 'b'))))
  t.equal(lock.responseId, 'first')
  const plain = new CandidateLock()
  t.notOk(plain.accepts(readFrame({ 'response.created': { chat_id: 'c', parent_id: 'p', response_id: 'only' } })))
  t.equal(plain.responseId, 'only', 'a created frame without an index is the answer')
  t.ok(plain.accepts(readFrame({ choices: [{ delta: { content: 'x' } }] })), 'frames without a response_id belong to the answer')
})

t.test('an answer that finishes without text is 502 upstream_empty_answer, never an empty 200', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  const [a, b] = h.sim.accounts
  for (const stream of [false, true]) {
    h.sim.queue(a!.email, { answer: '' })
    h.sim.queue(b!.email, { answer: '' })
    const res = await postJson(`${h.url}/v1/chat/completions`, chatBody('qwen3-max', { stream }))
    t.equal(res.status, 502, `stream ${stream}: a status before commit`)
    t.equal((await res.json() as any).error.code, 'upstream_empty_answer')
  }
  // An upstream failure: the next account is tried.
  h.sim.queue(a!.email, { answer: '' })
  h.sim.queue(b!.email, { answer: '' })
  h.sim.clearLog()
  const ok = await postJson(`${h.url}/v1/chat/completions`, chatBody('qwen3-max'))
  t.equal(ok.status, 502)
  t.equal(completions(h.sim.log()).length, 2, 'failed over to the other account')
  // After commit (reasoning went out first): an error frame.
  const h2 = await harness(t, { sim: { demoAccounts: 1 } })
  h2.sim.queue(h2.sim.accounts[0]!.email, { answer: '' })
  const res = await postJson(`${h2.url}/v1/chat/completions`, chatBody('qwen3-max-thinking', { stream: true }))
  t.equal(res.status, 200)
  const data = sseData(await res.text())
  t.equal(data.at(-1), '[DONE]')
  t.equal(JSON.parse(data.at(-2)!).error.code, 'upstream_empty_answer')
  // A stop cut at the very start is not an empty answer.
  h2.sim.queue(h2.sim.accounts[0]!.email, { answer: 'STOP here' })
  const cut = await postJson(`${h2.url}/v1/chat/completions`, chatBody('qwen3-max', { stop: ['STOP'] }))
  t.equal(cut.status, 200)
  t.equal((await cut.json() as any).choices[0].message.content, '')
})

t.test('oversized bodies: the history goes as a file (body guard); a captcha near the limit blames no account', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  const res = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'x'.repeat(100_001) }] })
  t.equal(res.status, 200)
  await res.json()
  t.equal(completions(h.sim.log()).length, 1, 'sent once, with the history as a file')
  t.ok(Buffer.byteLength(JSON.stringify(completions(h.sim.log())[0]!.body)) < 100_000)

  // Limit 140,000: a 135,000-character message passes the gateway, and the (simulated) WAF answers
  // its ≥128 KiB body with the bare captcha. Above 90 % of the limit: no cooldown, no failover.
  const near = await harness(t, { sim: { demoAccounts: 2 }, gateway: { upstreamBodyLimitBytes: 140_000 } })
  const r2 = await postJson(`${near.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'x'.repeat(135_000) }] })
  t.equal(r2.status, 503)
  t.match((await r2.json() as any).error, { code: 'upstream_challenge', message: /too large/ })
  t.equal(completions(near.sim.log()).length, 1, 'not failed over')
  t.ok(near.app.qwenPool.identities.every((i) => near.app.qwenPool.available(i)), 'no account in cooldown')

  // Far below the limit the same captcha is the account's: failover, cooldown.
  const far = await harness(t, { sim: { demoAccounts: 2 }, gateway: { upstreamBodyLimitBytes: 1_000_000 } })
  const r3 = await postJson(`${far.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'x'.repeat(135_000) }] })
  t.equal(r3.status, 503)
  t.equal(completions(far.sim.log()).length, 2, 'failed over')
  t.notOk(far.app.qwenPool.identities.every((i) => far.app.qwenPool.available(i)), 'accounts in cooldown')

  const e = new UpstreamError('challenge', 'x', { requestCaused: true })
  t.same(outcomeOf(e), { kind: 'neutral' })
  t.equal(e.retryable, false)
})

t.test('every non-SSE body is classified, framed or not, before and after commit', async (t) => {
  t.equal(classifyBody(200, 'application/json', '{"code":"FAIL_SYS_USER_VALIDATE"}').kind, 'challenge')
  t.equal(classifyBody(200, 'application/json', '{"data":{"url":"https://x/_____tmd_____/punish?x5secdata=1"}}').kind, 'challenge')
  t.equal(classifyBody(200, 'application/json', '{"error":{"code":"captcha_required"}}').kind, 'challenge')
  t.equal(classifyBody(200, 'application/json', '{"success":false,"data":{"code":"invalid_input","details":"think"}}').kind, 'bad_request')
  t.equal(readFrame({ code: 'RGV587_ERROR' }).kind, 'error', 'an anti-bot frame without choices')
  t.not(readFrame({ usage: { output_tokens: 1 } }).kind, 'error', 'a usage-only frame is not an error')

  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  const bare = JSON.stringify({ ret: ['FAIL_SYS_USER_VALIDATE', 'RGV587_ERROR::SM'], data: { url: 'https://chat.qwen.ai/punish?x5step=2' } })
  // Unframed JSON sent as an event stream; HTML sent as an event stream.
  h.sim.queue(email, { fail: { status: 200, body: bare, contentType: 'text/event-stream' } })
  const r1 = await postJson(`${h.url}/v1/chat/completions`, chatBody('qwen3-max', { stream: true }))
  t.equal(r1.status, 503)
  t.equal((await r1.json() as any).error.code, 'upstream_challenge')
  const h2 = await harness(t, { sim: { demoAccounts: 1 } })
  h2.sim.queue(h2.sim.accounts[0]!.email, { fail: { status: 200, body: '\n<html>captcha</html>', contentType: 'text/event-stream' } })
  const r2 = await postJson(`${h2.url}/v1/chat/completions`, chatBody('qwen3-max'))
  t.equal(r2.status, 503)
  // After commit: an SSE-framed anti-bot answer is an error frame.
  const h3 = await harness(t, { sim: { demoAccounts: 1 } })
  h3.sim.queue(h3.sim.accounts[0]!.email, { frameDelayMs: 5, errorAfterFrames: 4, errorFrame: JSON.parse(bare) })
  const r3 = await postJson(`${h3.url}/v1/chat/completions`, chatBody('qwen3-max', { stream: true }))
  t.equal(r3.status, 200)
  const data = sseData(await r3.text())
  t.equal(JSON.parse(data.at(-2)!).error.code, 'upstream_challenge')
})

t.test('the timezone header is computed at most once a second and matches the web app form', async (t) => {
  const { TimezoneClock, timezoneHeader } = await import('../src/upstream/protocol.js')
  const clock = new TimezoneClock()
  const base = Date.UTC(2026, 11, 3, 10, 0, 0)
  t.equal(clock.at(base), timezoneHeader(base))
  t.equal(clock.at(base + 999), timezoneHeader(base), 'the same second: the cached value')
  t.equal(clock.at(base + 61_000), timezoneHeader(base + 61_000), 'a later second: computed again')
  t.match(clock.at(base), /^[\x20-\x7e]+$/, 'ASCII only')
})
