import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import { Agent, request } from 'undici'
import type { Frame } from '../src/upstream/protocol.js'
import {
  defaultAnswer, defaultReasoning, estimateTokens, startSimulator, type Simulator, type SimulatorOptions,
} from '../src/simulator/index.js'

type Test = { teardown (fn: () => unknown): void }
const dispatcher = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 })
t.teardown(() => dispatcher.close())

async function sim (tt: Test, opts?: SimulatorOptions): Promise<Simulator> {
  const s = await startSimulator(opts)
  tt.teardown(() => s.close())
  return s
}

interface Call { token?: string; cookie?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal }

/** The 2026 web app's headers (PROTOCOL-2026 §2), sent by default. */
const WEB_HEADERS = (): Record<string, string> => ({ source: 'web', version: '0.2.81', 'x-request-id': randomUUID() })

async function call (s: Simulator, method: string, path: string, c: Call = {}) {
  const headers: Record<string, string> = { ...WEB_HEADERS(), ...c.headers }
  if (c.token) headers.authorization = `Bearer ${c.token}`
  if (c.cookie) headers.cookie = c.cookie
  if (c.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json'
  const res = await request(`${s.url}${path}`, {
    method: method as 'GET',
    headers,
    body: c.body === undefined ? undefined : typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
    dispatcher,
    signal: c.signal,
  })
  const text = await res.body.text()
  let json: any
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.statusCode, type: String(res.headers['content-type']), text, json }
}

function decode (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())
}

async function login (s: Simulator, i = 0): Promise<string> {
  const r = await call(s, 'GET', '/api/v1/auths/', { cookie: s.accounts[i]!.cookie })
  return r.json.token as string
}

async function newChat (s: Simulator, token: string, model = 'qwen3-max'): Promise<string> {
  const r = await call(s, 'POST', '/api/v2/chats/new', {
    token, body: { title: 'New Chat', models: [model], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() },
  })
  return r.json.data.id as string
}

interface Turn { model?: string; content?: string; thinking?: boolean; phase?: boolean; chatType?: string; parent?: string | null }

function turn (chatId: string, o: Turn = {}): Record<string, unknown> {
  const model = o.model ?? 'qwen3-max'
  const chatType = o.chatType ?? 't2t'
  return {
    stream: true,
    version: '2.1',
    incremental_output: true,
    chat_id: chatId,
    chat_mode: 'normal',
    model,
    parent_id: o.parent ?? null,
    messages: [{
      role: 'user',
      content: o.content ?? 'Hello there',
      user_action: 'chat',
      files: [],
      models: [model],
      chat_type: chatType,
      feature_config: { thinking_enabled: o.thinking ?? false, ...(o.phase === false ? {} : { output_schema: 'phase' }) },
      extra: { meta: { subChatType: chatType } },
    }],
    timestamp: Math.floor(Date.now() / 1000),
  }
}

const complete = (s: Simulator, token: string, chatId: string, o?: Turn) =>
  call(s, 'POST', `/api/v2/chat/completions?chat_id=${chatId}`, { token, body: turn(chatId, o) })

function frames (text: string): { frames: Frame[]; done: boolean } {
  const out: Frame[] = []
  let done = false
  for (const block of text.split('\n\n')) {
    if (!block) continue
    if (!block.startsWith('data: ')) throw new Error(`bad block ${block}`)
    const data = block.slice(6)
    if (data === '[DONE]') done = true
    else out.push(JSON.parse(data))
  }
  return { frames: out, done }
}

const deltas = (fs: Frame[]) => fs.flatMap((f) => f.choices?.map((c) => c.delta!) ?? [])
const textOf = (fs: Frame[], phase: string) => deltas(fs).filter((d) => d.phase === phase).map((d) => d.content).join('')

async function waitFor<T> (fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = fn()
    if (v !== undefined) return v
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error('timed out waiting')
}

t.test('texts and token estimate', async (t) => {
  const a = defaultAnswer('What is the capital of France?')
  t.match(a, /你好/)
  t.match(a, /🚀/)
  t.match(a, /capital of France/)
  t.ok(a.length >= 100 && a.length <= 220, `answer length ${a.length}`)
  t.not(defaultAnswer('x'), defaultAnswer('y'))
  t.equal(defaultAnswer('x', { search: true }).includes('[[1]]'), true)
  t.ok(defaultReasoning('x').includes('\n'))
  t.equal(estimateTokens('你好'), 2)
  t.equal(estimateTokens('abcde'), 2)
  t.equal(estimateTokens('ab你cd'), 3)
  t.equal(estimateTokens(''), 0)
})

t.test('auths: the cookie mints a valid token; Authorization is ignored there', async (t) => {
  const s = await sim(t)
  const acct = s.accounts[0]!
  t.equal(acct.email, 'demo1@sim.local')
  t.match(acct.cookie, /^token=eyJ[^;]+; ssxmod_itna=[^;]+; cna=.+$/)
  const r = await call(s, 'GET', '/api/v1/auths/', { cookie: acct.cookie })
  t.equal(r.status, 200)
  t.match(r.json, { id: acct.id, email: acct.email, role: 'user', token_type: 'Bearer', permissions: {} })
  const payload = decode(r.json.token)
  t.same(Object.keys(payload), ['id', 'last_password_change', 'exp'])
  t.equal(payload.exp, r.json.expires_at)
  t.ok((payload.exp as number) > Date.now() / 1000 + 6 * 86400)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', {
    token: r.json.token, body: { models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() },
  })).status, 200)
  const bearerOnly = await call(s, 'GET', '/api/v1/auths/', { token: r.json.token })
  t.equal(bearerOnly.status, 401)
  t.match(bearerOnly.json, { success: false, data: { code: 'Unauthorized' } })
  t.equal((await call(s, 'GET', '/api/v1/auths/', { cookie: `token=${r.json.token}` })).status, 200, 'a minted token works as cookie')
})

t.test('signin with the sha256 of the password', async (t) => {
  const s = await sim(t)
  const a = s.accounts[1]!
  const hash = createHash('sha256').update(a.password).digest('hex')
  const ok = await call(s, 'POST', '/api/v1/auths/signin', { body: { email: a.email, password: hash } })
  t.equal(ok.status, 200)
  t.equal(decode(ok.json.token).id, a.id)
  const plain = await call(s, 'POST', '/api/v1/auths/signin', { body: { email: a.email, password: a.password } })
  t.equal(plain.status, 401)
  t.match(plain.json, { success: false, data: { code: 'Unauthorized' } })
  t.equal((await call(s, 'POST', '/api/v1/auths/signin', { body: { email: a.email } })).status, 400)
})

t.test('models list', async (t) => {
  const s = await sim(t)
  const r = await call(s, 'GET', '/api/models')
  t.equal(r.status, 200)
  const byId = new Map<string, any>(r.json.data.map((m: any) => [m.id, m]))
  for (const id of ['qwen3-max', 'qwen3-235b-a22b', 'qwen3-coder-plus', 'qwen3-vl-plus', 'qwq-32b', 'qwen3.5-plus']) t.ok(byId.has(id), id)
  const max = byId.get('qwen3-max').info.meta
  t.match(max, { capabilities: { thinking: true, vision: true, search: true }, abilities: { thinking: 1 }, thinking_format: 'detail' })
  t.ok(max.chat_type.includes('t2i') && max.chat_type.includes('search'))
  t.equal(byId.get('qwen3.5-plus').info.meta.thinking_format, 'summary')
  t.equal(byId.get('qwen3-coder-plus').info.meta.abilities.thinking, 0)
  t.notOk(byId.get('qwq-32b').info.meta.chat_type.includes('search'))
  t.equal((await call(s, 'GET', '/api/models', { token: 'eyJ.bad.token' })).status, 401, 'a bad Bearer is refused')
  t.equal((await call(s, 'GET', '/api/models', { token: await login(s) })).status, 200)
})

t.test('chat flow: create, stream, reassemble, follow up', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  const prompt = 'Tell me about 北京 and 🐼 pandas'
  const r = await complete(s, token, chatId, { content: prompt })
  t.equal(r.status, 200)
  t.equal(r.type, 'text/event-stream; charset=utf-8')
  const { frames: fs, done } = frames(r.text)
  t.notOk(done, 'no [DONE] by default')
  const created = fs[0]!['response.created']!
  t.match(created, { chat_id: chatId, response_index: '0' })
  t.type(created.parent_id, 'string')
  t.equal(textOf(fs, 'answer'), defaultAnswer(prompt))
  const answerFrames = fs.filter((f) => f.choices?.[0]?.delta?.status === 'typing')
  t.ok(answerFrames.every((f) => Array.from(f.choices![0]!.delta!.content!).length <= 6))
  t.ok(answerFrames.every((f) => f.response_id === created.response_id && typeof f.timestamp === 'number'))
  const last = fs.at(-1)!
  t.match(last.choices![0]!.delta, { content: '', status: 'finished', phase: 'answer' })
  t.same(last.usage, {
    input_tokens: estimateTokens(prompt),
    output_tokens: estimateTokens(defaultAnswer(prompt)),
    total_tokens: estimateTokens(prompt) + estimateTokens(defaultAnswer(prompt)),
    output_tokens_details: { reasoning_tokens: 0, text_tokens: estimateTokens(defaultAnswer(prompt)) },
  })
  t.notOk(deltas(fs).some((d) => d.phase === 'think'), 'no reasoning without thinking_enabled')
  t.same(s.chats(s.accounts[0]!.email), [{ id: chatId, model: 'qwen3-max', turns: 1, lastResponseId: created.response_id }])

  const wrong = await complete(s, token, chatId, { parent: chatId })
  t.equal(wrong.status, 200)
  t.match(wrong.json, { success: false, data: { code: 'Bad_Request', details: `Invalid input chat parent_id ${chatId} is not exist.` } })
  const nullParent = await complete(s, token, chatId)
  t.match(nullParent.json, { data: { code: 'Bad_Request', details: 'Invalid input chat parent_id null is not exist.' } })

  const follow = await complete(s, token, chatId, { parent: created.response_id, content: 'and then?' })
  t.equal(follow.status, 200)
  t.equal(textOf(frames(follow.text).frames, 'answer'), defaultAnswer('and then?'))
  t.equal(s.chats(s.accounts[0]!.email)[0]!.turns, 2)

  const entry = s.log().find((e) => e.path === '/api/v2/chat/completions')!
  t.match(entry, { method: 'POST', query: { chat_id: chatId }, account: 'demo1@sim.local', status: 200, finished: true, aborted: false })
  t.equal(entry.framesSent, fs.length)
  t.equal(entry.headers.authorization, `${`Bearer ${token}`.slice(0, 12)}…`)
  t.match(entry.body, { chat_id: chatId })
})

t.test('cookie-only auth on completions, emitDone and frameChars', async (t) => {
  const s = await sim(t, { emitDone: true, frameChars: 50 })
  const cookie = s.accounts[0]!.cookie
  const r0 = await call(s, 'POST', '/api/v2/chats/new', { cookie, body: { models: ['qwq-32b'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 } })
  const chatId = r0.json.data.id
  const r = await call(s, 'POST', `/api/v2/chat/completions?chat_id=${chatId}`, { cookie, body: turn(chatId, { model: 'qwq-32b' }) })
  const { frames: fs, done } = frames(r.text)
  t.ok(done)
  t.ok(r.text.endsWith('data: [DONE]\n\n'))
  t.equal(fs.filter((f) => f.choices?.[0]?.delta?.status === 'typing').length, Math.ceil(Array.from(defaultAnswer('Hello there')).length / 50))
  s.queue(s.accounts[0]!.email, { done: false })
  const r2 = await call(s, 'POST', `/api/v2/chat/completions?chat_id=${chatId}`, {
    cookie, body: turn(chatId, { model: 'qwq-32b', parent: fs[0]!['response.created']!.response_id }),
  })
  t.notOk(frames(r2.text).done, 'scenario.done overrides emitDone')
})

t.test('thinking, detail format', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  const r = await complete(s, token, chatId, { thinking: true, content: 'why?' })
  const fs = frames(r.text).frames
  t.equal(textOf(fs, 'think'), defaultReasoning('why?'))
  const ds = deltas(fs)
  const thinkEnd = ds.findIndex((d) => d.phase === 'think' && d.status === 'finished')
  const firstAnswer = ds.findIndex((d) => d.phase === 'answer')
  t.ok(thinkEnd > 0 && thinkEnd < firstAnswer, 'think finishes before the answer')
  t.equal(textOf(fs, 'answer'), defaultAnswer('why?'))
  t.equal(fs.at(-1)!.usage!.output_tokens_details!.reasoning_tokens, estimateTokens(defaultReasoning('why?')))

  // A model that cannot think ignores thinking_enabled.
  const coder = await newChat(s, token, 'qwen3-coder-plus')
  const c = frames((await complete(s, token, coder, { model: 'qwen3-coder-plus', thinking: true })).text).frames
  t.notOk(deltas(c).some((d) => d.phase === 'think'))
})

t.test('thinking, summary format (qwen3.5-plus)', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token, 'qwen3.5-plus')
  s.queue(s.accounts[0]!.email, { reasoning: 'first thought\nsecond thought\nthird' })
  const fs = frames((await complete(s, token, chatId, { model: 'qwen3.5-plus', thinking: true })).text).frames
  const summary = deltas(fs).filter((d) => d.phase === 'thinking_summary')
  t.equal(summary.length, 4)
  t.ok(summary.every((d) => d.content === ''))
  t.same(summary.map((d) => d.extra!.summary_thought!.content!.length), [1, 2, 3, 3])
  t.equal(summary.at(-1)!.status, 'finished')
  t.equal(summary.at(-1)!.extra!.summary_thought!.content!.join('\n'), 'first thought\nsecond thought\nthird')
  t.ok(summary.every((d) => Array.isArray(d.extra!.summary_title!.content)))
  t.equal(textOf(fs, 'answer'), defaultAnswer('Hello there'))
})

t.test('search frame and citations', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  const fs = frames((await complete(s, token, chatId, { chatType: 'search', content: 'news today' })).text).frames
  const search = deltas(fs).find((d) => d.name === 'web_search')!
  t.match(search, { role: 'assistant', content: '', phase: 'web_search', status: 'finished' })
  t.equal(search.extra!.web_search_info!.length, 3)
  t.match(search.extra!.web_search_info![0], { url: /^https:\/\//, title: String, snippet: String, hostname: String })
  t.equal(textOf(fs, 'answer'), defaultAnswer('news today', { search: true }))
  t.match(textOf(fs, 'answer'), /\[\[1\]\]/)

  const qwq = await newChat(s, token, 'qwq-32b')
  const r = await complete(s, token, qwq, { model: 'qwq-32b', chatType: 'search' })
  t.match(r.json, { data: { code: 'Bad_Request' } }, 'search on a model without search')

  s.queue(s.accounts[0]!.email, { search: true })
  const forced = frames((await complete(s, token, qwq, { model: 'qwq-32b' })).text).frames
  t.ok(deltas(forced).some((d) => d.name === 'web_search'), 'scenario.search forces the frame')
})

t.test('t2i emits an image_gen frame', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  const fs = frames((await complete(s, token, chatId, { chatType: 't2i', content: 'a cat' })).text).frames
  const img = deltas(fs).find((d) => d.phase === 'image_gen')!
  t.match(img.content, new RegExp(`^${s.url}/qwen-webui-sim/output/.+\\.png\\?key=`), 'served by the simulator itself (simulator-media tests check the bytes)')
  t.match(fs.at(-1)!.choices![0]!.delta, { phase: 'answer', status: 'finished' })
})

t.test('no phase without output_schema', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  const fs = frames((await complete(s, token, chatId, { thinking: true, phase: false, chatType: 'search' })).text).frames
  const ds = deltas(fs)
  t.ok(ds.length > 5)
  t.ok(ds.every((d) => !('phase' in d)), 'no delta carries phase')
  t.equal(ds.map((d) => d.content).join(''), defaultReasoning('Hello there') + defaultAnswer('Hello there', { search: true }))
})

t.test('request validation', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  const path = `/api/v2/chat/completions?chat_id=${chatId}`
  const two = turn(chatId)
  ;(two.messages as unknown[]).push({ role: 'user', content: 'again', chat_type: 't2t', feature_config: {} })
  const many = await call(s, 'POST', path, { token, body: two })
  t.equal(many.status, 200)
  t.match(many.json, { success: false, request_id: String, data: { code: 'Bad_Request', details: 'Invalid input too many messages.' } })

  t.match((await call(s, 'POST', path, { token, body: { ...turn(chatId), stream: false } })).json, { data: { code: 'Bad_Request' } })
  t.equal((await call(s, 'POST', path, { token, body: { ...turn(chatId), chat_id: undefined } })).status, 400)
  t.equal((await call(s, 'POST', '/api/v2/chat/completions', { token, body: turn(chatId) })).status, 400, 'chat_id query required')
  t.match((await call(s, 'POST', path, { token, body: { ...turn(chatId), model: 'gpt-4' } })).json, { data: { code: 'Bad_Request' } })
  t.equal((await call(s, 'POST', path, { token, body: JSON.stringify(turn(chatId)), headers: { 'content-type': 'text/plain' } })).status, 400)
  t.equal((await call(s, 'POST', path, { token, body: '{not json' })).status, 400)
  const system = turn(chatId)
  ;(system.messages as Array<Record<string, unknown>>)[0]!.role = 'system'
  t.match((await call(s, 'POST', path, { token, body: system })).json, { data: { code: 'Bad_Request' } })
  const noFc = turn(chatId)
  delete (noFc.messages as Array<Record<string, unknown>>)[0]!.feature_config
  t.equal((await call(s, 'POST', path, { token, body: noFc })).status, 400)

  const other = await newChat(s, await login(s, 1))
  const foreign = await call(s, 'POST', `/api/v2/chat/completions?chat_id=${other}`, { token, body: turn(other) })
  t.equal(foreign.status, 404)
  t.match(foreign.json, { success: false, data: { code: 'Not_Found', details: 'Chat not found' } })
  const unknown = await complete(s, token, '00000000-0000-4000-8000-000000000000')
  t.equal(unknown.status, 404)

  const badNew = await call(s, 'POST', '/api/v2/chats/new', { token, body: { models: ['nope'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 } })
  t.match(badNew.json, { data: { code: 'Bad_Request' } })
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token, body: { models: [], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 } })).status, 400)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token, body: { models: ['qwen3-max'], chat_type: 't2t', timestamp: 1 } })).status, 400)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { body: { models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 } })).status, 401)

  t.same((await call(s, 'GET', '/api/v3/whatever')).json, { detail: 'Not Found' })
  t.equal((await call(s, 'GET', '/api/v3/whatever')).status, 404)
  t.equal((await call(s, 'GET', '/api/v2/chats/new')).status, 401, 'chat detail needs auth')
  t.equal((await call(s, 'PUT', '/api/models')).status, 404)
})

t.test('one generation per chat at a time', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { frameDelayMs: 20, answer: 'a slow answer' })
  const first = complete(s, token, chatId)
  await waitFor(() => s.log().find((e) => e.path === '/api/v2/chat/completions' && e.status === 200))
  const second = await complete(s, token, chatId)
  t.match(second.json, { success: false, data: { code: 'Bad_Request', details: 'The chat is in progress!' } })
  const r = await first
  t.equal(textOf(frames(r.text).frames, 'answer'), 'a slow answer')
  const parent = s.chats(s.accounts[0]!.email)[0]!.lastResponseId
  t.equal((await complete(s, token, chatId, { parent })).status, 200, 'free again once finished')
})

t.test('tokens: forged, expired, revoked, expired session', async (t) => {
  let clock = Date.now()
  const s = await sim(t, { now: () => clock, secret: 'test-secret', accounts: [{ email: 'short@sim.local', tokenTtlSeconds: 60 }] })
  const newChatBody = { models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 }
  const token = await login(s)
  const [h, p] = token.split('.')
  const forgedPayload = Buffer.from(JSON.stringify({ ...decode(token), exp: 9999999999 })).toString('base64url')
  const forged = await call(s, 'POST', '/api/v2/chats/new', { token: `${h}.${forgedPayload}.${token.split('.')[2]}`, body: newChatBody })
  t.equal(forged.status, 401)
  t.match(forged.json, { success: false, data: { code: 'Unauthorized' } })
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token: `${h}.${p}.AAAA`, body: newChatBody })).status, 401)
  t.equal((await call(s, 'GET', '/api/v1/auths/', { cookie: 'token=garbage' })).status, 401)

  // Expiry follows the injected clock.
  const short = s.accounts.find((a) => a.email === 'short@sim.local')!
  const shortToken = (await call(s, 'GET', '/api/v1/auths/', { cookie: short.cookie })).json.token
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token: shortToken, body: newChatBody })).status, 200)
  clock += 61_000
  const expired = await call(s, 'POST', '/api/v2/chats/new', { token: shortToken, body: newChatBody })
  t.equal(expired.status, 401)
  t.match(expired.json, { data: { code: 'Unauthorized', details: 'Token has expired, please log in again.' } })
  t.equal((await call(s, 'GET', '/api/v1/auths/', { cookie: short.cookie })).status, 401, 'the session token expired too')
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token, body: newChatBody })).status, 200, 'the 7-day token did not')

  // Revocation: minted tokens die, the cookie still refreshes.
  const email = s.accounts[0]!.email
  s.revokeTokens(email)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token, body: newChatBody })).status, 401)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { cookie: s.accounts[0]!.cookie, body: newChatBody })).status, 200)
  const fresh = await login(s)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token: fresh, body: newChatBody })).status, 200)
  s.expireSession(email)
  t.equal((await call(s, 'GET', '/api/v1/auths/', { cookie: s.accounts[0]!.cookie })).status, 401)
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token: fresh, body: newChatBody })).status, 401)
  const hash = createHash('sha256').update(s.accounts[0]!.password).digest('hex')
  const signin = await call(s, 'POST', '/api/v1/auths/signin', { body: { email, password: hash } })
  t.equal((await call(s, 'POST', '/api/v2/chats/new', { token: signin.json.token, body: newChatBody })).status, 200, 'signin still works')
  t.throws(() => s.revokeTokens('nobody@sim.local'))
})

t.test('fail scenarios', async (t) => {
  const s = await sim(t)
  const email = s.accounts[0]!.email
  const token = await login(s)
  const chatId = await newChat(s, token)
  const cases: Array<[Parameters<Simulator['queue']>[1], number, RegExp, unknown]> = [
    [{ fail: 'rate_limited', rateLimitHours: 3 }, 200, /json/, { success: false, request_id: String, data: { code: 'RateLimited', num: 3, template: /\{\{num\}\} hours/ } }],
    [{ fail: 'rate_limited' }, 200, /json/, { data: { num: 10 } }],
    [{ fail: 'unauthorized' }, 200, /json/, { success: false, data: { code: 'Unauthorized', details: 'Token has expired, please log in again.' } }],
    [{ fail: 'unauthorized_401' }, 401, /json/, { data: { code: 'Unauthorized' } }],
    [{ fail: 'challenge_json' }, 200, /json/, { ret: ['FAIL_SYS_USER_VALIDATE', 'RGV587_ERROR::SM'], data: { url: /punish\?action=captcha/ } }],
    [{ fail: 'challenge_html' }, 200, /^text\/html/, undefined],
    [{ fail: 'bad_request' }, 200, /json/, { data: { code: 'Bad_Request' } }],
    [{ fail: 'not_found' }, 404, /json/, { data: { code: 'Not_Found' } }],
    [{ fail: { status: 502, body: 'bad gateway' } }, 502, /^text\/plain/, undefined],
  ]
  for (const [sc, status, type, body] of cases) {
    s.queue(email, sc)
    const r = await complete(s, token, chatId)
    t.equal(r.status, status, JSON.stringify(sc))
    t.match(r.type, type)
    if (body) t.match(r.json, body)
  }
  t.equal(s.chats(email)[0]!.turns, 0, 'failed requests record no turn')

  s.queue(email, { fail: 'challenge_html' })
  t.match((await complete(s, token, chatId)).text, /aliyun_waf/)

  s.queue(email, { endpoint: 'chats_new', fail: 'rate_limited' }, { endpoint: 'auths', fail: 'unauthorized_401' }, { endpoint: 'models', fail: 'challenge_json' })
  t.match((await call(s, 'POST', '/api/v2/chats/new', { token, body: { models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: 1 } })).json, { data: { code: 'RateLimited' } })
  t.equal((await call(s, 'GET', '/api/v1/auths/', { cookie: s.accounts[0]!.cookie })).status, 401)
  t.match((await call(s, 'GET', '/api/models', { token })).json, { ret: ['FAIL_SYS_USER_VALIDATE', 'RGV587_ERROR::SM'] })
  t.equal((await call(s, 'GET', '/api/models', { token })).status, 200, 'consumed once')
  t.equal((await complete(s, token, chatId)).status, 200, 'queues are per endpoint')
})

t.test('firstByteDelayMs delays the status line', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { firstByteDelayMs: 80 })
  const start = Date.now()
  const r = await complete(s, token, chatId)
  t.ok(Date.now() - start >= 75)
  t.equal(textOf(frames(r.text).frames, 'answer'), defaultAnswer('Hello there'))
})

t.test('dropAfterFrames cuts the connection', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { dropAfterFrames: 3 })
  const res = await request(`${s.url}/api/v2/chat/completions?chat_id=${chatId}`, {
    method: 'POST', headers: { ...WEB_HEADERS(), authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(turn(chatId)), dispatcher,
  })
  t.equal(res.statusCode, 200)
  let received = ''
  await t.rejects(async () => {
    for await (const chunk of res.body) received += chunk.toString()
  })
  t.equal(frames(received).frames.length, 3)
  const entry = await waitFor(() => s.log().find((e) => e.path === '/api/v2/chat/completions' && e.framesSent === 3))
  t.match(entry, { aborted: false, finished: false })
  t.equal(s.chats(s.accounts[0]!.email)[0]!.turns, 1, 'the turn exists once response.created went out')
})

t.test('errorAfterFrames and a custom error frame', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { errorAfterFrames: 2 }, { errorAfterFrames: 1, errorFrame: { error: 'Internal error!' } })
  const fs = frames((await complete(s, token, chatId)).text).frames
  t.equal(fs.length, 3)
  t.same(fs[2], { error: { code: 'internal_error', details: 'Internal error!' } })
  const parent = s.chats(s.accounts[0]!.email)[0]!.lastResponseId
  const fs2 = frames((await complete(s, token, chatId, { parent })).text).frames
  t.same(fs2.at(-1), { error: 'Internal error!' })
})

t.test('splitBytes splits multi-byte characters across writes', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { splitBytes: 1, answer: '你好🚀' })
  const res = await request(`${s.url}/api/v2/chat/completions?chat_id=${chatId}`, {
    method: 'POST', headers: { ...WEB_HEADERS(), authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(turn(chatId)), dispatcher,
  })
  const chunks: Buffer[] = []
  for await (const c of res.body) chunks.push(c as Buffer)
  t.ok(chunks.length > 20, `${chunks.length} chunks`)
  t.equal(textOf(frames(Buffer.concat(chunks).toString('utf8')).frames, 'answer'), '你好🚀')
})

t.test('interleaved candidates', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { interleave: true })
  const fs = frames((await complete(s, token, chatId)).text).frames
  const [a, b] = [fs[0]!['response.created']!, fs[1]!['response.created']!]
  t.equal(a.response_index, '0')
  t.equal(b.response_index, '1')
  t.not(a.response_id, b.response_id)
  const rest = fs.slice(2)
  t.ok(rest.every((f) => typeof f.response_id === 'string'))
  t.equal(rest[0]!.response_id, a.response_id)
  t.equal(rest[1]!.response_id, b.response_id)
  t.equal(textOf(rest.filter((f) => f.response_id === a.response_id), 'answer'), defaultAnswer('Hello there'))
  t.not(textOf(rest.filter((f) => f.response_id === b.response_id), 'answer'), defaultAnswer('Hello there'))
  t.equal(s.chats(s.accounts[0]!.email)[0]!.lastResponseId, a.response_id)
})

t.test('the log records a client abort mid-stream', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { frameDelayMs: 30 })
  const ac = new AbortController()
  const res = await request(`${s.url}/api/v2/chat/completions?chat_id=${chatId}`, {
    method: 'POST', headers: { ...WEB_HEADERS(), authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(turn(chatId)), dispatcher, signal: ac.signal,
  })
  await t.rejects(async () => {
    for await (const _ of res.body) ac.abort()
  })
  const entry = await waitFor(() => s.log().find((e) => e.path === '/api/v2/chat/completions' && e.aborted ? e : undefined))
  t.match(entry, { aborted: true, finished: false, status: 200 })
  t.ok(entry.framesSent >= 1 && entry.framesSent < 10)
  // The chat is released once the client has gone.
  const parent = s.chats(s.accounts[0]!.email)[0]!.lastResponseId
  t.equal((await complete(s, token, chatId, { parent })).status, 200)
})

t.test('hang keeps the stream open until the client leaves; close() ends it too', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const chatId = await newChat(s, token)
  s.queue(s.accounts[0]!.email, { hang: true, answer: 'partial' }, { hang: true })
  const ac = new AbortController()
  const res = await request(`${s.url}/api/v2/chat/completions?chat_id=${chatId}`, {
    method: 'POST', headers: { ...WEB_HEADERS(), authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(turn(chatId)), dispatcher, signal: ac.signal,
  })
  let got = ''
  await t.rejects(async () => {
    for await (const c of res.body) {
      if (!got) setTimeout(() => ac.abort(), 50)
      got += c.toString()
    }
  })
  t.notOk(frames(got).frames.some((f) => f.choices?.[0]?.delta?.status === 'finished'), 'no finished frame')
  const entry = await waitFor(() => s.log().find((e) => e.aborted))
  t.match(entry, { aborted: true, finished: false })

  // A second hanging stream is ended by close() without being counted as a client abort.
  const parent = s.chats(s.accounts[0]!.email)[0]!.lastResponseId
  const res2 = await request(`${s.url}/api/v2/chat/completions?chat_id=${chatId}`, {
    method: 'POST', headers: { ...WEB_HEADERS(), authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(turn(chatId, { parent })), dispatcher,
  })
  const reading = (async () => { for await (const _ of res2.body); })()
  await waitFor(() => s.log().find((e) => e.framesSent > 5 && !e.aborted))
  await s.close()
  await t.rejects(reading)
  t.equal(s.log().filter((e) => e.aborted).length, 1)
})

t.test('chat list, detail and delete', async (t) => {
  const s = await sim(t)
  const token = await login(s)
  const ids: string[] = []
  for (let i = 0; i < 22; i++) ids.push(await newChat(s, token))
  await complete(s, token, ids[21]!)
  const p1 = await call(s, 'GET', '/api/v2/chats/?page=1', { token })
  t.match(p1.json, { success: true, request_id: String })
  t.equal(p1.json.data.length, 20)
  t.equal(p1.json.data[0].id, ids[21], 'newest first')
  t.match(p1.json.data[0], { title: 'New Chat', created_at: Number, updated_at: Number })
  const p2 = await call(s, 'GET', '/api/v2/chats/?page=2', { token })
  t.same(p2.json.data.map((c: { id: string }) => c.id), [ids[1], ids[0]])
  const detail = await call(s, 'GET', `/api/v2/chats/${ids[21]}`, { token })
  const last = s.chats(s.accounts[0]!.email).at(-1)!.lastResponseId
  t.match(detail.json, { success: true, data: { id: ids[21], currentId: last, chat: { history: { currentId: last } } } })
  t.equal(detail.json.data.chat.messages.length, 2)
  const other = await login(s, 1)
  t.equal((await call(s, 'DELETE', `/api/v2/chats/${ids[0]}`, { token: other })).status, 404, "not the other account's")
  const del = await call(s, 'DELETE', `/api/v2/chats/${ids[0]}`, { token })
  t.match(del.json, { success: true, data: true })
  t.equal((await call(s, 'DELETE', `/api/v2/chats/${ids[0]}`, { token })).status, 404)
  t.equal(s.chats(s.accounts[0]!.email).length, 21)
})

t.test('control routes', async (t) => {
  const s = await sim(t, { demoAccounts: 1, logLimit: 5 })
  const accounts = await call(s, 'GET', '/__sim/accounts')
  t.same(accounts.json, s.accounts)
  const added = await call(s, 'POST', '/__sim/accounts', { body: { email: 'new@sim.local', password: 'pw' } })
  t.match(added.json, { email: 'new@sim.local', password: 'pw', id: String, cookie: /^token=/ })
  t.equal((await call(s, 'POST', '/__sim/accounts', { body: { email: 'new@sim.local' } })).status, 409)
  t.equal(s.addAccount().email, 'user3@sim.local')
  t.equal(s.accounts.length, 3)

  const q = await call(s, 'POST', '/__sim/scenarios', { body: { email: 'new@sim.local', scenarios: [{ fail: 'rate_limited' }] } })
  t.same(q.json, { queued: 1 })
  t.equal((await call(s, 'POST', '/__sim/scenarios', { body: { email: 'nobody@sim.local', scenarios: [] } })).status, 404)
  t.equal((await call(s, 'POST', '/__sim/scenarios', { body: { email: 'new@sim.local', scenarios: [{ endpoint: 'nope' }] } })).status, 400)
  const token = (await call(s, 'GET', '/api/v1/auths/', { cookie: added.json.cookie })).json.token
  const chatId = await newChat(s, token)
  t.match((await complete(s, token, chatId)).json, { data: { code: 'RateLimited' } })

  const log = await call(s, 'GET', '/__sim/log')
  t.equal(log.json.length, 3)
  t.notOk(log.json.some((e: { path: string }) => e.path.startsWith('/__sim')), 'control routes are not logged')
  const since = await call(s, 'GET', `/__sim/log?since=${log.json[1].seq}`)
  t.equal(since.json.length, 1)
  t.equal(since.json[0].path, '/api/v2/chat/completions')
  for (let i = 0; i < 4; i++) await call(s, 'GET', '/api/models')
  t.equal(s.log().length, 5, 'ring buffer')
  t.equal((await call(s, 'DELETE', '/__sim/log')).status, 200)
  t.same(s.log(), [])

  t.equal((await call(s, 'POST', '/__sim/revoke', { body: { email: 'new@sim.local' } })).status, 200)
  t.equal((await call(s, 'GET', '/api/v2/chats/?page=1', { token })).status, 401)
  t.equal((await call(s, 'POST', '/__sim/expire', { body: { email: 'new@sim.local' } })).status, 200)
  t.equal((await call(s, 'GET', '/api/v1/auths/', { cookie: added.json.cookie })).status, 401)

  s.queue('demo1@sim.local', { fail: 'not_found' })
  t.equal((await call(s, 'POST', '/__sim/reset')).status, 200)
  t.same(s.chats('new@sim.local'), [])
  t.same(s.log(), [])
  const demoToken = (await call(s, 'GET', '/api/v1/auths/', { cookie: s.accounts[0]!.cookie })).json.token
  const demoChat = await newChat(s, demoToken)
  t.equal((await complete(s, demoToken, demoChat)).status, 200, 'reset cleared the queue')
  t.equal((await call(s, 'GET', '/__sim/nope')).status, 404)
  t.equal((await call(s, 'POST', '/__sim/revoke', { body: '[1]' })).status, 400)
})
