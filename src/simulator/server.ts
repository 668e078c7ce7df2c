/** The simulator's HTTP server: upstream endpoints, control routes, accounts, chats and the log. */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PATHS, type AuthsResponse } from '../upstream/protocol.js'
import { appError, badRequest, EXPIRED, failReply, invalidRequest, jsonReply, unauthorized, type Reply } from './bodies.js'
import { interleaveFrames, sse, turnFrames, type TurnPlan } from './frames.js'
import { jwtCodec } from './jwt.js'
import { modelCatalog } from './models.js'
import { fileStore } from './files.js'
import { simLatency } from './latency.js'
import { SIM_RATIOS, generator } from './generate.js'
import { defaultAnswer, defaultReasoning } from './text.js'
import type {
  Scenario, ScenarioEndpoint, SimAccount, SimAccountSpec, SimChatInfo, SimLogEntry, Simulator, SimulatorOptions,
} from './types.js'

const BODY_LIMIT = 20 * 1024 * 1024
/** 2026: a completion body of this size or more gets the WAF captcha (PROTOCOL-2026 §3, threshold UNSURE). */
const CAPTCHA_BODY_BYTES = 128 * 1024
/** The bare WAF answer to an oversized body (PROTOCOL-2026 §3, #147), sent without SSE framing. */
const SIZE_CAPTCHA = JSON.stringify({
  ret: ['FAIL_SYS_USER_VALIDATE', 'RGV587_ERROR::SM::哎哟喂,被挤爆啦,请稍后重试'],
  data: { url: 'https://chat.qwen.ai:443//api/v2/chat/completions/_____tmd_____/punish?x5secdata=c2ltdWxhdGVk&x5step=2&action=captcha&pureCaptcha=' },
})
const CHATS_PAGE_SIZE = 20
const DONE = 'data: [DONE]\n\n'
/** 4 KiB of short `data:` lines with no blank line between them (scenario `floodAfterFrames`). */
const FLOOD = 'data: {"flood":1}\n'.repeat(227)
const DEFAULT_ERROR_FRAME = { error: { code: 'internal_error', details: 'Internal error!' } }
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }
const CHAT_MODES = new Set(['normal', 'guest', 'community', 'local'])
const ENDPOINTS = new Set<string>(['completions', 'chats_new', 'auths', 'models', 'sts', 'chats_delete'])
const PERMISSIONS = {
  workspace: { models: false, knowledge: false, prompts: false, tools: false },
  chat: { file_upload: true, delete: true, edit: true, temporary: true },
}

interface Chat {
  id: string
  model: string
  title: string
  chatType: string
  createdAt: number
  updatedAt: number
  /** User message id, assistant `response_id` and user text of each turn: the chain the model sees. */
  turns: Array<{ userId: string; responseId: string; prompt: string }>
  /** A generation is running. */
  busy: boolean
}

interface Account {
  pub: SimAccount
  passwordHash: string
  ttl: number
  /**
   * `last_password_change` of tokens minted now. Revocation bumps it, which invalidates every token
   * minted before. The session token is minted with a smaller value, so it never equals a minted one.
   */
  generation: number
  sessionToken: string
  sessionValid: boolean
  queues: Map<ScenarioEndpoint, Scenario[]>
  /** Insertion order = creation order. */
  chats: Map<string, Chat>
}

/** One upstream request in flight. */
interface Ctx {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  entry: SimLogEntry
  /** The response's 'close' fired. */
  closed: boolean
  /** The simulator cut the connection on purpose (not an abort). */
  dropped: boolean
  /** Bytes of the request body read by `jsonBody`. */
  bodyBytes: number
  /** Resolves after ms, or at once when the response closes. */
  sleep(ms: number): Promise<void>
  /** Write and wait until flushed (backpressure), or until the response closes. */
  flush(data: string | Buffer): Promise<void>
}

type Handler = (ctx: Ctx) => Promise<void> | void

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const mask = (v: string): string => `${v.slice(0, 12)}…`
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function cookieToken (cookie: string | undefined): string | undefined {
  if (!cookie) return undefined
  for (const part of cookie.split(';')) {
    const p = part.trim()
    if (p.startsWith('token=')) return p.slice(6)
  }
  return undefined
}

/** The body, `null` when over the limit, `undefined` when the client went away first. */
function readBody (req: IncomingMessage, limit = BODY_LIMIT): Promise<Buffer | null | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size <= limit) chunks.push(c)
    })
    req.on('end', () => resolve(size > limit ? null : Buffer.concat(chunks)))
    req.on('error', () => resolve(undefined))
    req.on('close', () => resolve(undefined))
  })
}

function isJsonType (type: string | undefined): boolean {
  if (!type) return false
  const semi = type.indexOf(';')
  return (semi < 0 ? type : type.slice(0, semi)).trim().toLowerCase() === 'application/json'
}

export async function startSimulator (opts: SimulatorOptions = {}): Promise<Simulator> {
  const now = opts.now ?? Date.now
  const nowSec = (): number => Math.floor(now() / 1000)
  const jwt = jwtCodec(opts.secret ?? randomBytes(32).toString('hex'))
  const defaultTtl = opts.tokenTtlSeconds ?? 7 * 24 * 3600
  const frameChars = Math.max(1, opts.frameChars ?? 6)
  const logLimit = Math.max(1, opts.logLimit ?? 1000)
  const emitDone = opts.emitDone ?? false
  const site = opts.site ?? '2026'
  const is2026 = site === '2026'
  const lat = simLatency(opts.latency)
  const catalog = modelCatalog(site)
  const modelsBody = JSON.stringify({ data: [...catalog.values()].map((m) => m.wire) })
  /** `/api/v2/models/` (2026): the same list, wrapped. */
  const modelsV2Body = JSON.stringify({ success: true, request_id: randomUUID(), data: { data: [...catalog.values()].map((m) => m.wire) } })

  const accounts: SimAccount[] = []
  const byEmail = new Map<string, Account>()
  const byId = new Map<string, Account>()
  let entries: SimLogEntry[] = []
  let seq = 0
  let closing = false

  // ---- accounts and tokens ------------------------------------------------------------------

  function addAccount (spec: SimAccountSpec = {}): SimAccount {
    let n = accounts.length + 1
    while (spec.email === undefined && byEmail.has(`user${n}@sim.local`)) n++
    const email = spec.email ?? `user${n}@sim.local`
    if (byEmail.has(email.toLowerCase())) throw new Error(`simulator: account ${email} already exists`)
    const id = randomUUID()
    const ttl = spec.tokenTtlSeconds ?? defaultTtl
    const t = nowSec()
    const sessionToken = jwt.sign({ id, last_password_change: t - 1, exp: t + ttl })
    const password = spec.password ?? `password-${n}`
    const pub: SimAccount = {
      id,
      email,
      password,
      name: spec.name ?? email.split('@')[0]!,
      cookie: `token=${sessionToken}; ssxmod_itna=${randomBytes(30).toString('base64url')}; cna=${randomBytes(18).toString('base64url')}`,
    }
    const acct: Account = {
      pub,
      passwordHash: createHash('sha256').update(password).digest('hex'),
      ttl,
      generation: t,
      sessionToken,
      sessionValid: true,
      queues: new Map(),
      chats: new Map(),
    }
    accounts.push(pub)
    byEmail.set(email.toLowerCase(), acct)
    byId.set(id, acct)
    return pub
  }

  function account (email: string): Account {
    const acct = byEmail.get(email.toLowerCase())
    if (!acct) throw new Error(`simulator: no account ${email}`)
    return acct
  }

  function revoke (acct: Account): void {
    acct.generation = Math.max(nowSec(), acct.generation + 1)
  }

  /** The account a token belongs to, or why it is refused. */
  function checkToken (token: string | undefined): Account | string {
    if (!token) return 'Not authenticated'
    const p = jwt.verify(token)
    const acct = p && byId.get(p.id)
    if (!p || !acct) return 'Invalid token'
    if (p.exp <= nowSec()) return EXPIRED
    const valid = token === acct.sessionToken ? acct.sessionValid : p.last_password_change === acct.generation
    return valid ? acct : EXPIRED
  }

  /**
   * Authenticate by `Authorization: Bearer` (which wins when present) or the `token` cookie; with
   * `cookieOnly` by the cookie alone. Answers 401 and returns undefined on failure.
   */
  function authenticate (ctx: Ctx, cookieOnly: boolean): Account | undefined {
    const header = ctx.req.headers.authorization
    const token = !cookieOnly && header !== undefined
      ? (header.startsWith('Bearer ') ? header.slice(7).trim() : header)
      : cookieToken(ctx.req.headers.cookie)
    const r = checkToken(token)
    if (typeof r === 'string') {
      reply(ctx, unauthorized(r))
      return undefined
    }
    ctx.entry.account = r.pub.email
    return r
  }

  function session (acct: Account): AuthsResponse & Record<string, unknown> {
    const exp = nowSec() + acct.ttl
    const { id, email, name } = acct.pub
    const token = jwt.sign({ id, last_password_change: acct.generation, exp })
    return {
      id, email, name, role: 'user', profile_image_url: '/user.png', token, token_type: 'Bearer', expires_at: exp, permissions: PERMISSIONS,
    }
  }

  // ---- request plumbing -----------------------------------------------------------------------

  function logEntry (req: IncomingMessage, url: URL): SimLogEntry {
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined) continue
      const s = Array.isArray(v) ? v.join(', ') : v
      headers[k] = k === 'authorization' || k === 'cookie' || k === 'x-oss-security-token' ? mask(s) : s
    }
    const entry: SimLogEntry = {
      seq: ++seq, time: now(), method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams),
      account: null, headers, body: undefined, status: 0, framesSent: 0, aborted: false, finished: false, closed: false,
    }
    entries.push(entry)
    if (entries.length > logLimit) entries.shift()
    return entry
  }

  function context (req: IncomingMessage, res: ServerResponse, url: URL): Ctx {
    let timer: NodeJS.Timeout | undefined
    let wake: (() => void) | undefined
    const ctx: Ctx = {
      req, res, url, entry: logEntry(req, url), closed: false, dropped: false, bodyBytes: 0,
      sleep: (ms) => ms > 0 && !ctx.closed
        ? new Promise((resolve) => { wake = resolve; timer = setTimeout(resolve, ms) })
        : Promise.resolve(),
      flush: (data) => ctx.closed
        ? Promise.resolve()
        : new Promise((resolve) => { wake = resolve; res.write(data, () => resolve()) }),
    }
    res.once('finish', () => { ctx.entry.finished = true })
    res.once('close', () => {
      ctx.closed = true
      ctx.entry.closed = true
      clearTimeout(timer)
      wake?.()
      if (!res.writableFinished && !ctx.dropped && !closing) ctx.entry.aborted = true
    })
    return ctx
  }

  function reply (ctx: Ctx, r: Reply): void {
    if (ctx.closed) return
    ctx.entry.status = r.status
    ctx.res.writeHead(r.status, { 'content-type': r.contentType, 'content-length': Buffer.byteLength(r.body) })
    ctx.res.end(r.body)
  }

  /** The JSON object body, or undefined after answering 400/413 (or when the client left). */
  async function jsonBody (ctx: Ctx): Promise<Record<string, unknown> | undefined> {
    const raw = await readBody(ctx.req)
    if (raw === undefined) return undefined
    if (raw === null) return void reply(ctx, jsonReply(413, { detail: 'Request Entity Too Large' }))
    ctx.bodyBytes = raw.length
    let body: unknown
    try {
      body = JSON.parse(raw.toString('utf8'))
      ctx.entry.body = body
    } catch {
      return void reply(ctx, invalidRequest('JSON decode error'))
    }
    if (!isJsonType(ctx.req.headers['content-type'])) return void reply(ctx, invalidRequest('Content-Type must be application/json'))
    if (!isRecord(body)) return void reply(ctx, invalidRequest('Input should be a valid dictionary'))
    return body
  }

  const take = (acct: Account, endpoint: ScenarioEndpoint): Scenario => acct.queues.get(endpoint)?.shift() ?? {}

  /** A scenario's first-byte delay and failure; true when the response is already dealt with. */
  async function preamble (ctx: Ctx, sc: Scenario): Promise<boolean> {
    await ctx.sleep(sc.firstByteDelayMs ?? 0)
    if (ctx.closed) return true
    if (sc.fail === undefined) return false
    reply(ctx, failReply(sc.fail, sc.rateLimitHours))
    return true
  }

  /** Uploads: STS, the object store, the 2026 parse step (`files.ts`). */
  const files = fileStore<Ctx, Account>({
    is2026, now, baseUrl: () => sim.url, authenticate, jsonBody, readBody, reply,
    scenario: (ctx, acct) => preamble(ctx, take(acct, 'sts')),
  }, opts.parseDelayMs ?? 0)
  /** Generated images and video tasks (`generate.ts`). */
  const gen = generator<Ctx>(files, { is2026, now, reply })

  // ---- upstream endpoints -----------------------------------------------------------------

  async function auths (ctx: Ctx): Promise<void> {
    const acct = authenticate(ctx, true)
    if (!acct || await preamble(ctx, take(acct, 'auths'))) return
    reply(ctx, jsonReply(200, session(acct)))
  }

  async function signin (ctx: Ctx): Promise<void> {
    const body = await jsonBody(ctx)
    if (!body) return
    if (typeof body.email !== 'string' || typeof body.password !== 'string') {
      return reply(ctx, invalidRequest("Field 'email', 'password': Field required"))
    }
    const acct = byEmail.get(body.email.toLowerCase())
    if (!acct || body.password.toLowerCase() !== acct.passwordHash) {
      return reply(ctx, unauthorized('The email or password provided is incorrect.'))
    }
    ctx.entry.account = acct.pub.email
    if (await preamble(ctx, take(acct, 'auths'))) return
    reply(ctx, jsonReply(200, session(acct)))
  }

  async function models (ctx: Ctx): Promise<void> {
    // No auth needed; a Bearer, when sent, must be valid; a valid cookie token identifies the account.
    let acct: Account | undefined
    if (ctx.req.headers.authorization !== undefined) {
      acct = authenticate(ctx, false)
      if (!acct) return
    } else {
      const r = checkToken(cookieToken(ctx.req.headers.cookie))
      if (typeof r !== 'string') {
        acct = r
        ctx.entry.account = r.pub.email
      }
    }
    if (acct && await preamble(ctx, take(acct, 'models'))) return
    reply(ctx, { status: 200, contentType: 'application/json', body: ctx.url.pathname === PATHS.models ? modelsBody : modelsV2Body })
  }

  /**
   * 2026: the web app's headers on chats/new and completions (`source: web`, a `version`, an
   * `x-request-id`); answers 200 + Bad_Request and returns false when one is missing. Never a
   * particular `version` value, never `bx-*` (PROTOCOL-2026 §7.2).
   */
  function webHeaders (ctx: Ctx): boolean {
    if (!is2026) return true
    const h = ctx.req.headers
    const missing = h.source !== 'web' ? 'source' : !h.version ? 'version' : !h['x-request-id'] ? 'x-request-id' : undefined
    if (missing === undefined) return true
    reply(ctx, badRequest(`Invalid request header ${missing}.`))
    return false
  }

  async function newChat (ctx: Ctx): Promise<void> {
    const acct = authenticate(ctx, false)
    const body = acct && await jsonBody(ctx)
    if (!acct || !body || !webHeaders(ctx)) return
    const { models: ids, chat_type: chatType, chat_mode: mode, timestamp } = body
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((m) => typeof m === 'string')) {
      return reply(ctx, invalidRequest("Field 'models': Input should be a non-empty list of strings"))
    }
    if (typeof chatType !== 'string') return reply(ctx, invalidRequest("Field 'chat_type': Field required"))
    if (typeof mode !== 'string' || !CHAT_MODES.has(mode)) {
      return reply(ctx, invalidRequest("Field 'chat_mode': Input should be 'normal', 'guest', 'community' or 'local'"))
    }
    if (!Number.isInteger(timestamp)) return reply(ctx, invalidRequest("Field 'timestamp': Input should be a valid integer"))
    const unknown = ids.find((m: string) => !catalog.has(m))
    if (unknown !== undefined) return reply(ctx, badRequest(`Invalid input model ${unknown} is not exist.`))
    if (await preamble(ctx, take(acct, 'chats_new'))) return
    await ctx.sleep(lat.chatNew())
    if (ctx.closed) return
    const t = nowSec()
    const chat: Chat = {
      id: randomUUID(), model: ids[0], title: typeof body.title === 'string' ? body.title : 'New Chat', chatType,
      createdAt: t, updatedAt: t, turns: [], busy: false,
    }
    acct.chats.set(chat.id, chat)
    reply(ctx, jsonReply(200, { success: true, request_id: randomUUID(), data: { id: chat.id } }))
  }

  async function completion (ctx: Ctx): Promise<void> {
    const acct = authenticate(ctx, false)
    const body = acct && await jsonBody(ctx)
    if (!acct || !body) return
    if (is2026 && ctx.bodyBytes >= CAPTCHA_BODY_BYTES) {
      // The WAF answers before the application sees anything: HTTP 200, bare JSON, no SSE framing.
      ctx.entry.status = 200
      ctx.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'content-length': Buffer.byteLength(SIZE_CAPTCHA) })
      ctx.res.end(SIZE_CAPTCHA)
      return
    }
    if (!webHeaders(ctx)) return
    const chatId = ctx.url.searchParams.get('chat_id')
    if (!chatId) return reply(ctx, invalidRequest("Field 'chat_id' (query): Field required"))
    if (typeof body.chat_id !== 'string') return reply(ctx, invalidRequest("Field 'chat_id': Field required"))
    if (body.chat_id !== chatId) return reply(ctx, badRequest('Invalid input chat_id does not match the chat_id query parameter.'))
    if (is2026) {
      if (body.version !== '2.1') return reply(ctx, badRequest(`Invalid input version ${String(body.version)} is not supported.`))
      if (body.chatId !== undefined && body.chatId !== chatId) return reply(ctx, badRequest('Invalid input chatId does not match chat_id.'))
      if (body.parentId !== undefined && (body.parentId ?? null) !== (body.parent_id ?? null)) {
        return reply(ctx, badRequest('Invalid input parentId does not match parent_id.'))
      }
    }
    const chat = acct.chats.get(chatId)
    if (!chat) return reply(ctx, appError(404, 'Not_Found', 'Chat not found'))
    if (typeof body.stream !== 'boolean') return reply(ctx, badRequest('Invalid input stream must be true.'))
    const messages = body.messages
    if (!Array.isArray(messages)) return reply(ctx, invalidRequest("Field 'messages': Input should be a valid list"))
    if (messages.length > 1) return reply(ctx, badRequest('Invalid input too many messages.'))
    if (messages.length === 0) return reply(ctx, badRequest('Invalid input messages is empty.'))
    const m: unknown = messages[0]
    if (!isRecord(m)) return reply(ctx, invalidRequest("Field 'messages.0': Input should be a valid dictionary"))
    if (m.role !== 'user') return reply(ctx, badRequest(`Invalid input message role ${String(m.role)} is not supported.`))
    if (typeof m.content !== 'string') return reply(ctx, invalidRequest("Field 'messages.0.content': Input should be a valid string"))
    const fc = m.feature_config
    if (!isRecord(fc)) return reply(ctx, invalidRequest("Field 'messages.0.feature_config': Field required"))
    if (typeof m.chat_type !== 'string') return reply(ctx, invalidRequest("Field 'messages.0.chat_type': Field required"))
    const model = typeof body.model === 'string' ? catalog.get(body.model) : undefined
    if (!model) return reply(ctx, badRequest(`Invalid input model ${String(body.model)} is not exist.`))
    if (!model.chatTypes.includes(m.chat_type)) {
      return reply(ctx, badRequest(`Invalid input chat_type ${m.chat_type} is not supported by model ${model.id}.`))
    }
    const refused = files.checkFiles(acct.pub.id, m.files)
    if (refused !== undefined) return reply(ctx, badRequest(refused))
    const attached = Array.isArray(m.files) ? m.files as Array<{ type: string }> : []
    if (!model.vision && attached.some((f) => f.type === 'image')) {
      return reply(ctx, badRequest(`Invalid input model ${model.id} does not support image input.`))
    }
    // t2v is a non-stream request answered with a task (PROTOCOL §1.9); everything else streams.
    const video = m.chat_type === 't2v'
    if (body.stream !== !video) return reply(ctx, badRequest(video ? 'Invalid input t2v requires stream false.' : 'Invalid input stream must be true.'))
    const media = video || m.chat_type === 't2i' || m.chat_type === 'image_edit'
    const size = body.size
    if (size !== undefined && (!media || typeof size !== 'string' || !SIM_RATIOS.has(size))) {
      return reply(ctx, badRequest(`Invalid input size ${String(size)} is not supported.`))
    }
    if (m.chat_type === 'image_edit' && !attached.some((f) => f.type === 'image')) {
      return reply(ctx, badRequest('Invalid input image_edit needs an image to edit.'))
    }
    if (is2026 && model.mustThink && fc.thinking_enabled !== true) {
      // PROTOCOL-2026 §3: the exact body is UNSURE.
      return reply(ctx, appError(200, 'invalid_input', `Model ${model.id} requires thinking to be enabled.`))
    }
    const parent = body.parent_id ?? null
    if (parent !== null && typeof parent !== 'string') {
      return reply(ctx, invalidRequest("Field 'parent_id': Input should be a valid string"))
    }
    if (chat.busy) return reply(ctx, badRequest('The chat is in progress!'))
    const last = chat.turns.at(-1)?.responseId ?? null
    if (parent !== last) return reply(ctx, badRequest(`Invalid input chat parent_id ${String(parent)} is not exist.`))

    const sc = take(acct, 'completions')
    chat.busy = true
    ctx.res.once('close', () => { chat.busy = false })
    if (await preamble(ctx, sc)) {
      chat.busy = false
      return
    }
    if (video) {
      chat.busy = false
      chat.turns.push({ userId: randomUUID(), responseId: randomUUID(), prompt: m.content })
      return reply(ctx, gen.video(acct.pub.id, chatId, (size as string | undefined) ?? '16:9', { durationMs: sc.videoMs ?? opts.videoMs ?? 300, fail: sc.videoFail }))
    }
    const search = m.chat_type === 'search' || sc.search === true
    const plan: TurnPlan = {
      chatId,
      userId: randomUUID(),
      responseId: randomUUID(),
      responseIndex: '0',
      prompt: m.content,
      answer: sc.answer ?? (attached.length ? `I see ${attached.length} attached file(s) (${attached.map((f) => f.type).join(', ')}). ` : '') + defaultAnswer(m.content, { search, earlier: chat.turns.map((x) => x.prompt) }),
      thinking: fc.thinking_enabled === true ? model.thinkingFormat : undefined,
      reasoning: sc.reasoning ?? defaultReasoning(m.content),
      phase: fc.output_schema === 'phase',
      search,
      image: undefined,
      frameChars,
      usage: sc.usage ?? true,
      tagged: sc.interleave === true,
      nowSec: nowSec(),
    }
    if (media) plan.image = gen.image(acct.pub.id, chatId, plan.responseId, (size as string | undefined) ?? '1:1')
    await stream(ctx, chat, plan, sc)
  }

  /** Write one turn's event stream as the scenario says. */
  async function stream (ctx: Ctx, chat: Chat, plan: TurnPlan, sc: Scenario): Promise<void> {
    const { res, entry } = ctx
    if (sc.floodAfterFrames !== undefined) return flood(ctx, chat, plan, sc.floodAfterFrames, sc.pauseMs ?? 50)
    const open = (f: string[]): string[] => (sc.hang ? f.slice(0, -1) : f)
    let frames = open(turnFrames(plan))
    if (sc.interleave) {
      const second = open(turnFrames({ ...plan, responseId: randomUUID(), responseIndex: '1', answer: `(another candidate) ${plan.answer}` }))
      frames = sc.interleave === 'reversed' ? interleaveFrames(second, frames) : interleaveFrames(frames, second)
    }
    const drop = sc.dropAfterFrames
    const cut = drop ?? sc.errorAfterFrames
    if (cut !== undefined) frames = frames.slice(0, cut)
    if (drop === undefined && sc.errorAfterFrames !== undefined) frames.push(sse(sc.errorFrame ?? DEFAULT_ERROR_FRAME))
    const tail = cut === undefined && !sc.hang && (sc.done ?? emitDone) ? DONE : ''

    if (cut !== 0) {
      // The turn exists once its response.created frame goes out.
      chat.turns.push({ userId: plan.userId, responseId: plan.responseId, prompt: plan.prompt })
      chat.updatedAt = plan.nowSec
    }
    entry.status = 200
    res.writeHead(200, SSE_HEADERS)
    const firstDelay = lat.firstFrame()
    if (firstDelay > 0) {
      // The headers go out at once, the first frame after the model "thought" (latency profile).
      res.flushHeaders()
      await ctx.sleep(firstDelay)
      if (ctx.closed) return
    }

    // A scenario's frame delay wins over the latency profile's.
    const delay = sc.frameDelayMs ?? (lat.paced ? 1 : 0)
    const gap = (): number => sc.frameDelayMs ?? lat.frame()
    const split = sc.splitBytes ?? 0
    const pause = sc.pauseAfterFrames
    if (pause !== undefined && delay <= 0 && split <= 0 && drop === undefined && !sc.hang) {
      // Two bursts: the first k frames, a pause, then the rest in one write.
      await ctx.flush(frames.slice(0, pause).join(''))
      await ctx.sleep(sc.pauseMs ?? 50)
      if (ctx.closed) return
      entry.framesSent = frames.length
      chat.busy = false
      res.end(frames.slice(pause).join('') + tail)
      return
    }
    if (delay <= 0 && split <= 0 && drop === undefined && !sc.hang) {
      entry.framesSent = frames.length
      chat.busy = false
      res.end(frames.join('') + tail)
      return
    }
    const chunks = tail ? [...frames, tail] : frames
    for (let i = 0; i < chunks.length && !ctx.closed; i++) {
      if (i > 0) await ctx.sleep(gap())
      if (split > 0) {
        const buf = Buffer.from(chunks[i]!)
        for (let o = 0; o < buf.length && !ctx.closed; o += split) {
          if (o > 0) await immediate()
          await ctx.flush(buf.subarray(o, o + split))
        }
      } else {
        await ctx.flush(chunks[i]!)
      }
      if (i < frames.length) entry.framesSent = i + 1
    }
    if (ctx.closed) return
    if (drop !== undefined) {
      if (frames.length === 0) res.flushHeaders()
      ctx.dropped = true
      res.destroy()
    } else if (!sc.hang) {
      chat.busy = false
      res.end()
    }
    // hang: the connection stays open until the client leaves or the simulator closes.
  }

  /** The first k frames of the turn, a pause, then an event that never ends, until the connection closes. */
  async function flood (ctx: Ctx, chat: Chat, plan: TurnPlan, k: number, pauseMs: number): Promise<void> {
    const frames = turnFrames(plan).slice(0, k)
    if (k > 0) chat.turns.push({ userId: plan.userId, responseId: plan.responseId, prompt: plan.prompt })
    ctx.entry.status = 200
    ctx.res.writeHead(200, SSE_HEADERS)
    await ctx.flush(frames.join(''))
    ctx.entry.framesSent = frames.length
    if (k > 0) await ctx.sleep(pauseMs)
    while (!ctx.closed) await ctx.flush(FLOOD)
  }

  function ownChat (ctx: Ctx, acct: Account): Chat | undefined {
    let id: string
    try {
      id = decodeURIComponent(ctx.url.pathname.slice(PATHS.chats.length))
    } catch {
      id = ''
    }
    const chat = acct.chats.get(id)
    if (!chat) reply(ctx, appError(404, 'Not_Found', 'Chat not found'))
    return chat
  }

  function listChats (ctx: Ctx): void {
    const acct = authenticate(ctx, false)
    if (!acct) return
    const page = Number(ctx.url.searchParams.get('page') ?? '1')
    if (!Number.isInteger(page) || page < 1) return reply(ctx, invalidRequest("Field 'page': Input should be a positive integer"))
    const data = [...acct.chats.values()].reverse().slice((page - 1) * CHATS_PAGE_SIZE, page * CHATS_PAGE_SIZE)
      .map((c) => ({ id: c.id, title: c.title, created_at: c.createdAt, updated_at: c.updatedAt, chat_type: c.chatType }))
    reply(ctx, jsonReply(200, { success: true, request_id: randomUUID(), data }))
  }

  function chatDetail (ctx: Ctx): void {
    const acct = authenticate(ctx, false)
    const chat = acct && ownChat(ctx, acct)
    if (!chat) return
    const messages = chat.turns.flatMap((t, i) => [
      { id: t.userId, role: 'user', parentId: i ? chat.turns[i - 1]!.responseId : null, childrenIds: [t.responseId], models: [chat.model] },
      { id: t.responseId, role: 'assistant', parentId: t.userId, childrenIds: [], model: chat.model },
    ])
    const currentId = chat.turns.at(-1)?.responseId ?? null
    reply(ctx, jsonReply(200, {
      success: true,
      request_id: randomUUID(),
      data: {
        id: chat.id, title: chat.title, chat_type: chat.chatType, created_at: chat.createdAt, updated_at: chat.updatedAt, currentId,
        chat: { models: [chat.model], history: { messages: Object.fromEntries(messages.map((x) => [x.id, x])), currentId }, messages },
      },
    }))
  }

  async function deleteChat (ctx: Ctx): Promise<void> {
    const acct = authenticate(ctx, false)
    const chat = acct && ownChat(ctx, acct)
    if (!acct || !chat) return
    if (await preamble(ctx, take(acct, 'chats_delete'))) return
    acct.chats.delete(chat.id)
    reply(ctx, jsonReply(200, { success: true, request_id: randomUUID(), data: true }))
  }

  const routes = new Map<string, Handler>([
    [`GET ${PATHS.auths}`, auths],
    [`POST ${PATHS.signin}`, signin],
    [`GET ${PATHS.models}`, models],
    ...(is2026 ? [[`GET ${PATHS.modelsV2}`, models] as [string, Handler]] : []),
    [`POST ${PATHS.newChat}`, newChat],
    [`POST ${PATHS.completions}`, completion],
    [`GET ${PATHS.chats}`, listChats],
  ])

  async function upstream (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ctx = context(req, res, url)
    const path = url.pathname
    const method = req.method ?? 'GET'
    const handler = routes.get(`${method} ${path}`) ?? files.handler(method, path)
    if (handler) return handler(ctx)
    const task = gen.handler(method, path)
    if (task) {
      const acct = authenticate(ctx, false)
      return acct && task(ctx, acct.pub.id)
    }
    const chatItem = path.startsWith(PATHS.chats) && path.length > PATHS.chats.length && !path.includes('/', PATHS.chats.length)
    if (chatItem && method === 'GET') return chatDetail(ctx)
    if (chatItem && method === 'DELETE') return deleteChat(ctx)
    reply(ctx, jsonReply(404, { detail: 'Not Found' }))
  }

  // ---- control routes (/__sim/*, no auth, not logged) ------------------------------------------

  function send (res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  async function control (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let body: Record<string, unknown> = {}
    if (req.method === 'POST') {
      const raw = await readBody(req)
      if (!raw) return send(res, 400, { error: 'could not read the body' })
      try {
        const parsed: unknown = raw.length ? JSON.parse(raw.toString('utf8')) : {}
        if (!isRecord(parsed)) throw new Error('not an object')
        body = parsed
      } catch {
        return send(res, 400, { error: 'the body must be a JSON object' })
      }
    }
    const email = typeof body.email === 'string' ? body.email : ''
    const known = byEmail.has(email.toLowerCase())
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /__sim/accounts':
        return send(res, 200, accounts)
      case 'POST /__sim/accounts': {
        const bad = ['email', 'password', 'name'].find((k) => body[k] !== undefined && typeof body[k] !== 'string') ??
          (body.tokenTtlSeconds !== undefined && typeof body.tokenTtlSeconds !== 'number' ? 'tokenTtlSeconds' : undefined)
        if (bad) return send(res, 400, { error: `invalid ${bad}` })
        if (typeof body.email === 'string' && known) return send(res, 409, { error: `account ${email} already exists` })
        return send(res, 200, addAccount(body as SimAccountSpec))
      }
      case 'POST /__sim/scenarios': {
        if (!known) return send(res, 404, { error: `no account ${email}` })
        const list = body.scenarios
        if (!Array.isArray(list) || !list.every((s) => isRecord(s) && (s.endpoint === undefined || ENDPOINTS.has(String(s.endpoint))))) {
          return send(res, 400, { error: 'scenarios must be an array of scenario objects' })
        }
        sim.queue(email, ...(list as Scenario[]))
        return send(res, 200, { queued: list.length })
      }
      case 'GET /__sim/log': {
        const since = Number(url.searchParams.get('since') ?? '0') || 0
        return send(res, 200, sim.log().filter((e) => e.seq > since))
      }
      case 'DELETE /__sim/log':
        sim.clearLog()
        return send(res, 200, { ok: true })
      case 'POST /__sim/reset':
        sim.reset()
        return send(res, 200, { ok: true })
      case 'POST /__sim/revoke':
      case 'POST /__sim/expire':
        if (!known) return send(res, 404, { error: `no account ${email}` })
        if (url.pathname === '/__sim/revoke') sim.revokeTokens(email)
        else sim.expireSession(email)
        return send(res, 200, { ok: true })
      default:
        return send(res, 404, { error: 'unknown control route' })
    }
  }

  // ---- server and handle ----------------------------------------------------------------------

  const server = createServer((req, res) => {
    req.on('error', () => {}) // a client that resets mid-request is not the simulator's error
    const url = new URL(req.url ?? '/', 'http://simulator.invalid')
    const work = url.pathname.startsWith('/__sim/') ? control(req, res, url) : upstream(req, res, url)
    work.catch(() => {
      if (res.headersSent) res.destroy()
      else send(res, 500, { detail: 'Internal Server Error' })
    })
  })
  let connections = 0
  server.on('connection', () => { connections++ })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address

  const sim: Simulator = {
    url: `http://${host}:${addr.port}`,
    accounts,
    addAccount,
    queue (email, ...scenarios) {
      const acct = account(email)
      for (const sc of scenarios) {
        const endpoint = sc.endpoint ?? 'completions'
        const q = acct.queues.get(endpoint)
        if (q) q.push(sc)
        else acct.queues.set(endpoint, [sc])
      }
    },
    revokeTokens (email) {
      revoke(account(email))
    },
    expireSession (email) {
      const acct = account(email)
      revoke(acct)
      acct.sessionValid = false
    },
    log: () => entries.map((e) => ({ ...e, query: { ...e.query }, headers: { ...e.headers } })),
    clearLog () {
      entries = []
    },
    reset () {
      entries = []
      for (const acct of byEmail.values()) {
        acct.queues.clear()
        acct.chats.clear()
      }
      files.clear()
      gen.clear()
    },
    chats (email) {
      return [...account(email).chats.values()].map((c): SimChatInfo => ({
        id: c.id, model: c.model, turns: c.turns.length, lastResponseId: c.turns.at(-1)?.responseId ?? null, prompts: c.turns.map((x) => x.prompt),
      }))
    },
    connections: () => connections,
    close () {
      closing = true
      return new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }

  for (let i = 1; i <= (opts.demoAccounts ?? 2); i++) {
    addAccount({ email: `demo${i}@sim.local`, password: `demo-password-${i}`, name: `Demo User ${i}` })
  }
  for (const spec of opts.accounts ?? []) addAccount(spec)
  return sim
}
