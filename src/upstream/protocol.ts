/**
 * The chat.qwen.ai wire protocol (v2) as far as this project depends on it.
 *
 * Everything the gateway knows about the upstream's paths, headers, request bodies, frames and error
 * bodies lives in this one module, so that a guess that turns out wrong (the lines marked UNSURE in
 * the protocol notes) is changed in one place. The simulator imports the *types* from here but
 * validates requests with its own code.
 */
import { createHash, randomUUID } from 'node:crypto'
import { UpstreamError } from '../errors.js'

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

export const PATHS = {
  /** E1: session user + token, authenticated by the `token` cookie only. */
  auths: '/api/v1/auths/',
  /** E2: email/password sign-in (password sent as sha256 hex). */
  signin: '/api/v1/auths/signin',
  /** E3: model list, flat `{data:[…]}` (both eras; the 0.2.81 web app still uses it). */
  models: '/api/models',
  /** E3 (2026): the newer model list, answered wrapped (`{success, data:{data:[…]}}`); the fallback. */
  modelsV2: '/api/v2/models/',
  /** E4: create a chat. */
  newChat: '/api/v2/chats/new',
  /** E5: one turn in a chat; `?chat_id=` is added by {@link completionPath}. */
  completions: '/api/v2/chat/completions',
  /** E6: list chats, `?page=N`; E7/E8: one chat below it (`/api/v2/chats/<id>`). */
  chats: '/api/v2/chats/',
} as const

export function completionPath (chatId: string): string {
  return `${PATHS.completions}?chat_id=${encodeURIComponent(chatId)}`
}

/** E6: one page of the account's chats, page 1 = newest. */
export function chatsPath (page: number): string {
  return `${PATHS.chats}?page=${page}`
}

/** E7 (GET) / E8 (DELETE): one chat. */
export function chatPath (chatId: string): string {
  return PATHS.chats + encodeURIComponent(chatId)
}

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

const USER_AGENT = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36'

/** The web app version sent in the `version` header unless configured (`UPSTREAM_WEB_VERSION`). */
export const DEFAULT_WEB_VERSION = '0.2.81'
/** Largest serialized completion body sent (UPSTREAM_BODY_LIMIT_BYTES): the site answers ~128 KiB and more with a captcha (UNSURE threshold). */
export const DEFAULT_BODY_LIMIT_BYTES = 100_000

/** The origin the web app runs on: referers are built on it (never the configured base URL). */
const WEB_ORIGIN = 'https://chat.qwen.ai'

/**
 * Browser-like headers that do not change between requests (built once). Both eras at once
 * (PROTOCOL-2026 §7): `source: web` and, per call, `version`, `x-request-id`, `timezone`. No `bx-*`
 * header, no fingerprint values of any kind (PROTOCOL-2026 §6).
 */
const STATIC_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'user-agent': USER_AGENT,
  accept: 'application/json, text/plain, */*',
  'accept-language': 'en-US,en;q=0.9',
  // The SSE parser must never see compressed bytes (DECISIONS).
  'accept-encoding': 'identity',
  source: 'web',
  'sec-fetch-dest': 'empty',
  'sec-fetch-mode': 'cors',
  'sec-fetch-site': 'same-origin',
  origin: WEB_ORIGIN,
})

export interface Credentials {
  /** The JWT, sent as `Authorization: Bearer`. */
  token?: string | undefined
  /** The browser cookie string, sent verbatim. */
  cookie?: string | undefined
}

/** Per-call header values besides the credentials. */
export interface HeaderContext {
  requestId: string
  /** A JSON body follows. */
  json: boolean
  /** The `version` header (the web app's version). */
  webVersion: string
  /** Path of the page the web app would call from: `/`, `/c/new-chat`, `/c/<chat id>`. */
  page: string
  /** `accept` when it differs from the default (completions: `application/json`, as the 0.2.81 app sends). */
  accept?: string
  /** The `timezone` header when the caller has it already (see TimezoneClock). */
  timezone?: string
  /** Now, for the `timezone` header. */
  now: number
}

/** The web app's `timezone` header: JS `Date#toString()` with non-ASCII removed. */
export function timezoneHeader (now: number): string {
  return new Date(now).toString().replace(/[^\x20-\x7e]/g, '')
}

/** `timezoneHeader`, computed at most once a second (Date#toString is costly per request). */
export class TimezoneClock {
  private second = NaN
  private value = ''

  at (now: number): string {
    const s = Math.floor(now / 1000)
    if (s !== this.second) {
      this.second = s
      this.value = timezoneHeader(now)
    }
    return this.value
  }
}

/** The referer page of a completion in chat `chatId`. */
export const chatPage = (chatId: string): string => `/c/${encodeURIComponent(chatId)}`
export const NEW_CHAT_PAGE = '/c/new-chat'

/**
 * Headers for one upstream call. Both auth forms at once (PROTOCOL-2026 §7): the token as
 * `Authorization: Bearer` (the 2025 site and the 2026 STS/detail/task endpoints) and the cookie
 * (the 2026 web app authenticates by cookie only). When there is a token but no cookie, a `token=`
 * cookie is synthesised.
 */
export function buildHeaders (cred: Credentials, h: HeaderContext): Record<string, string> {
  const out: Record<string, string> = {
    ...STATIC_HEADERS,
    'x-request-id': h.requestId,
    version: h.webVersion,
    timezone: h.timezone ?? timezoneHeader(h.now),
    referer: WEB_ORIGIN + h.page,
  }
  if (h.accept) out.accept = h.accept
  if (h.json) out['content-type'] = 'application/json'
  if (cred.token) out.authorization = `Bearer ${cred.token}`
  const cookie = cred.cookie ?? (cred.token ? `token=${cred.token}` : undefined)
  if (cookie) out.cookie = cookie
  return out
}

/** Extract the `token=` JWT from a browser cookie string, if it carries one. */
export function tokenFromCookie (cookie: string): string | undefined {
  const m = /(?:^|;\s*)token=([^;\s]+)/.exec(cookie)
  return m ? m[1] : undefined
}

// ---------------------------------------------------------------------------------------------
// Secrets in bodies (debug logging)
// ---------------------------------------------------------------------------------------------

/** JSON string values of these keys are secrets (tokens in E1/E2 answers, passwords, STS keys, …). */
const SECRET_FIELD = /"(token|access_token|refresh_token|id_token|password|cookie|authorization|api_key|apikey|secret|access_key_id|accesskeyid|access_key_secret|accesskeysecret|security_token|securitytoken|key)"\s*:\s*"(?:[^"\\]|\\.)*"/gi
/** JWTs anywhere (the session token, and the `key=` of signed CDN URLs). */
const JWT = /eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g
/** Signatures and tokens in query strings of signed URLs. */
const SECRET_PARAM = /([?&](?:key|token|signature|x-oss-signature|security-token|x-oss-security-token|ossaccesskeyid)=)[^&"'\s\\]+/gi

/** Longest body or frame text a debug log line carries. */
export const LOG_TEXT_MAX = 300

/**
 * An upstream body or frame made fit for a debug log: secrets replaced by `[redacted]` (first, over
 * the whole text, so a secret is never half-cut and then missed), then cut to `max` characters.
 */
export function redactForLog (text: string, max = LOG_TEXT_MAX): string {
  const s = text.replace(JWT, '[redacted]').replace(SECRET_FIELD, '"$1":"[redacted]"').replace(SECRET_PARAM, '$1[redacted]')
  return s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

export type ChatType = 't2t' | 'search' | 't2i' | 'image_edit' | 't2v'

export interface NewChatBody {
  title: string
  /** 2026 web app: `""` (the id is assigned by the upstream). */
  chatId: ''
  project_id: ''
  models: string[]
  chat_mode: 'normal'
  chat_type: ChatType
  /** Milliseconds. */
  timestamp: number
}

/**
 * The 2026 feature set (PROTOCOL-2026 §2). `output_schema: "phase"` is required: without it the
 * deltas carry no phase. UNSURE: `thinking_mode` (peers send "Auto", "Fast"/"Thinking" or
 * "Auto"/"Disabled"), `auto_thinking`, and `auto_search`.
 */
export interface FeatureConfig {
  thinking_enabled: boolean
  output_schema: 'phase'
  thinking_mode: 'Thinking' | 'Fast'
  auto_thinking: boolean
  thinking_format: 'summary'
  research_mode: 'normal'
  auto_search: boolean
}

export interface UpstreamMessage {
  id: null
  fid: string
  parentId: string | null
  parent_id: string | null
  childrenIds: string[]
  role: 'user'
  content: string
  user_action: 'chat'
  files: unknown[]
  timestamp: number
  models: string[]
  model: ''
  chat_type: ChatType
  feature_config: FeatureConfig
  extra: { meta: { subChatType: ChatType } }
  sub_chat_type: ChatType
}

export interface CompletionBody {
  stream: true
  /** The 2026 body format; the 2025 site ignores it. */
  version: '2.1'
  incremental_output: true
  /** Both spellings (the 0.2.81 web app writes them twice). */
  chat_id: string
  chatId: string
  chat_mode: 'normal'
  model: string
  parent_id: string | null
  parentId: string | null
  messages: [UpstreamMessage]
  /** Seconds. */
  timestamp: number
  /** t2i / image_edit / t2v: the aspect ratio (`16:9`, PROTOCOL §4.1.4). */
  size?: string
}

/** E2 body: the password travels as its sha256 hex digest. */
export function signinBody (email: string, password: string): { email: string; password: string } {
  return { email, password: createHash('sha256').update(password).digest('hex') }
}

export function newChatBody (model: string, chatType: ChatType, now: number): NewChatBody {
  return { title: 'New Chat', chatId: '', project_id: '', models: [model], chat_mode: 'normal', chat_type: chatType, timestamp: now }
}

export interface TurnSpec {
  chatId: string
  model: string
  chatType: ChatType
  thinking: boolean
  content: string
  /**
   * Parent linkage for a follow-up turn in the same chat: the previous turn's assistant id, i.e. the
   * `response_id` of its `response.created` frame (protocol decision §1.6.6; UNSURE upstream-side).
   */
  parentId: string | null
  /** Media turns (t2i, image_edit, t2v): the aspect ratio, sent as the top-level `size`. */
  size?: string
  /** Upstream file objects (uploaded for the identity that sends this turn), PROTOCOL §1.8.4. */
  files?: unknown[]
}

/** The one-message completion body (2026 `version: "2.1"` shape, accepted by the 2025 site). */
export function completionBody (t: TurnSpec, now: number): CompletionBody {
  const ts = Math.floor(now / 1000)
  return {
    stream: true,
    version: '2.1',
    incremental_output: true,
    chat_id: t.chatId,
    chatId: t.chatId,
    chat_mode: 'normal',
    model: t.model,
    parent_id: t.parentId,
    parentId: t.parentId,
    messages: [{
      id: null,
      fid: randomUUID(),
      parentId: t.parentId,
      parent_id: t.parentId,
      childrenIds: [randomUUID()],
      role: 'user',
      content: t.content,
      user_action: 'chat',
      files: t.files ?? [],
      timestamp: ts,
      models: [t.model],
      model: '',
      chat_type: t.chatType,
      feature_config: {
        thinking_enabled: t.thinking,
        output_schema: 'phase',
        thinking_mode: t.thinking ? 'Thinking' : 'Fast',
        auto_thinking: false,
        thinking_format: 'summary',
        research_mode: 'normal',
        auto_search: t.chatType === 'search',
      },
      extra: { meta: { subChatType: t.chatType } },
      sub_chat_type: t.chatType,
    }],
    timestamp: ts,
    ...(t.size ? { size: t.size } : {}),
  }
}

/**
 * The upstream answers a request body above roughly 120 KB with its anti-bot captcha (PROTOCOL-2026
 * §3, #147). A captcha answered to a body above this share of `UPSTREAM_BODY_LIMIT_BYTES` is blamed
 * on the body, not on the account.
 */
export const BODY_NEAR_LIMIT = 0.9

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

export interface AuthsResponse {
  id: string
  email: string
  name: string
  role: string
  token: string
  token_type: 'Bearer'
  expires_at: number
  permissions?: unknown
}

/** Token extraction order used by the original project: `token`, `access_token`, `data.token`. */
function tokenOf (body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined
  const b = body as Record<string, unknown>
  for (const v of [b.token, b.access_token, (b.data as Record<string, unknown> | undefined)?.token]) {
    if (typeof v === 'string' && v.length > 0) return v
  }
  return undefined
}

export interface UpstreamModelMeta {
  capabilities?: Record<string, boolean>
  abilities?: Record<string, number>
  chat_type?: string[]
  max_context_length?: number
  max_generation_length?: number
  thinking_format?: string
  [k: string]: unknown
}

export interface UpstreamModel {
  id: string
  name?: string
  object?: string
  owned_by?: string
  info?: { meta?: UpstreamModelMeta; created_at?: number; [k: string]: unknown }
  [k: string]: unknown
}

export interface Usage {
  input_tokens?: number
  output_tokens?: number
  total_tokens?: number
  output_tokens_details?: { reasoning_tokens?: number; text_tokens?: number }
  prompt_tokens_details?: { cached_tokens?: number }
  [k: string]: unknown
}

export type Phase = 'think' | 'thinking_summary' | 'answer' | 'web_search' | string

export interface WebSearchInfo { url?: string; title?: string; snippet?: string; hostname?: string; [k: string]: unknown }

export interface Delta {
  role?: 'assistant' | 'function' | string
  content?: string
  phase?: Phase
  status?: 'typing' | 'finished' | 'running' | string
  name?: string
  extra?: {
    web_search_info?: WebSearchInfo[]
    summary_title?: { content?: string[] }
    summary_thought?: { content?: string[] }
    [k: string]: unknown
  }
  [k: string]: unknown
}

export interface ResponseCreated {
  chat_id: string
  parent_id: string
  response_id: string
  response_index?: string
}

/** One parsed `data:` frame of the completion stream. */
export interface Frame {
  'response.created'?: ResponseCreated
  'response.info'?: Record<string, unknown>
  choices?: Array<{ delta?: Delta; message?: Delta; finish_reason?: string | null }>
  response_id?: string
  usage?: Usage
  timestamp?: number
  error?: unknown
  success?: boolean
  data?: { code?: string; details?: string; [k: string]: unknown }
  [k: string]: unknown
}

/** Upstream application error envelope: `{success:false, data:{code, details}}` (also seen unwrapped). */
export interface AppErrorBody {
  success: false
  request_id?: string
  data?: { code: string; details?: string; num?: number; template?: string; [k: string]: unknown }
  code?: string
  details?: string
}

/** Anti-bot (WAF) markers in the structured fields of a JSON body (PROTOCOL-2026 §3, RF@d339974:ue). */
const ANTI_BOT = /FAIL_SYS_USER_VALIDATE|RGV587|captcha|\/punish\?/i

const str = (v: unknown): string => (typeof v === 'string' ? v : '')

/** The JSON body is the anti-bot answer: `ret[]`, `code`, `data.code`, `data.url` or `error.code` carries a marker. */
function antiBot (b: Record<string, unknown>): boolean {
  if (Array.isArray(b.ret) && b.ret.some((r) => typeof r === 'string' && ANTI_BOT.test(r))) return true
  const data = b.data && typeof b.data === 'object' ? b.data as Record<string, unknown> : undefined
  const error = b.error && typeof b.error === 'object' ? b.error as Record<string, unknown> : undefined
  return [b.code, data?.code, data?.url, error?.code].some((v) => ANTI_BOT.test(str(v)))
}

/** What a non-stream body (or an in-stream error frame) means. */
export type UpstreamProblem =
  | { kind: 'rate_limited'; message: string; retryAfterMs?: number }
  | { kind: 'unauthorized'; message: string }
  | { kind: 'challenge'; message: string }
  | { kind: 'bad_request'; message: string }
  | { kind: 'not_found'; message: string }
  | { kind: 'server'; message: string }

/**
 * Classify an upstream body that is not an event stream: JSON application errors, the anti-bot
 * JSON, the HTML challenge page, or anything else. `status` is the HTTP status it came with.
 */
export function classifyBody (status: number, contentType: string, text: string): UpstreamProblem {
  const trimmed = text.trimStart()
  if (contentType.includes('text/html') || trimmed.startsWith('<')) {
    if (/captcha|punish|aliyun_waf|slider|verify/i.test(text) || status === 200 || status === 403) {
      return { kind: 'challenge', message: 'the upstream answered with an anti-bot challenge page' }
    }
    return { kind: 'server', message: `the upstream answered HTTP ${status} with an HTML page` }
  }
  let body: unknown
  try { body = JSON.parse(text) } catch { body = undefined }
  if (body && typeof body === 'object') {
    const p = classifyErrorObject(body as Record<string, unknown>)
    if (p) return p
  }
  if (status === 401 || status === 403) return { kind: 'unauthorized', message: `the upstream answered HTTP ${status}` }
  if (status === 429) return { kind: 'rate_limited', message: 'the upstream answered HTTP 429' }
  if (status === 404) return { kind: 'not_found', message: 'the upstream answered HTTP 404' }
  const snippet = text.slice(0, 200).replace(/\s+/g, ' ')
  return { kind: 'server', message: `the upstream answered HTTP ${status}${snippet ? `: ${snippet}` : ' with an empty body'}` }
}

/** Map an UpstreamProblem (decoded body) to the gateway error a client will see. */
export function problemToError (p: UpstreamProblem): UpstreamError {
  switch (p.kind) {
    case 'rate_limited': return new UpstreamError('rate_limited', `Upstream rate limit: ${p.message}`, p.retryAfterMs === undefined ? {} : { retryAfterMs: p.retryAfterMs })
    case 'unauthorized': return new UpstreamError('auth_failed', `Upstream authentication failed: ${p.message}`)
    case 'challenge': return new UpstreamError('challenge', `${p.message}; open chat.qwen.ai in a browser with this account, pass the check, then refresh its cookie`)
    case 'bad_request': return new UpstreamError('bad_request', `The upstream rejected the request: ${p.message}`)
    case 'not_found': return new UpstreamError('bad_request', `The upstream did not find what the request named: ${p.message}`)
    case 'server': return new UpstreamError('upstream_error', p.message)
  }
}

/** Classify a parsed JSON object that signals an error; `undefined` when it does not look like one. */
export function classifyErrorObject (b: Record<string, unknown>): UpstreamProblem | undefined {
  if (antiBot(b)) {
    return { kind: 'challenge', message: 'the upstream asked for an anti-bot verification (FAIL_SYS_USER_VALIDATE)' }
  }
  if (b.error !== undefined && b.error !== null) {
    const e = b.error
    const msg = typeof e === 'string' ? e : (e as Record<string, unknown>).details ?? (e as Record<string, unknown>).message ?? JSON.stringify(e)
    return { kind: 'server', message: `upstream error: ${String(msg)}` }
  }
  if (b.success === false) {
    const data = (b.data && typeof b.data === 'object' ? b.data : b) as Record<string, unknown>
    const code = String(data.code ?? '')
    const details = String(data.details ?? data.code ?? 'unknown upstream error')
    const lc = code.toLowerCase()
    if (lc === 'ratelimited') {
      const hours = typeof data.num === 'number' && data.num > 0 ? data.num : undefined
      return { kind: 'rate_limited', message: details, ...(hours !== undefined ? { retryAfterMs: hours * 3_600_000 } : {}) }
    }
    if (lc === 'unauthorized') return { kind: 'unauthorized', message: details }
    // `invalid_input`: e.g. thinking turned off for a model that must think (PROTOCOL-2026 §3; body UNSURE).
    if (lc === 'bad_request' || lc === 'invalid_input') return { kind: 'bad_request', message: lc === 'invalid_input' ? `${code}: ${details}` : details }
    if (lc === 'not_found') return { kind: 'not_found', message: details }
    return { kind: 'server', message: code ? `${code}: ${details}` : details }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Interpretation: what the rest of the gateway reads out of upstream bodies and frames
// ---------------------------------------------------------------------------------------------

/** Token and expiry from an E1/E2 answer (token lookup order: `token`, `access_token`, `data.token`). */
export function sessionOf (body: unknown): { token: string; expiresAt?: number } | undefined {
  const token = tokenOf(body)
  if (!token) return undefined
  const expiresAt = (body as { expires_at?: unknown }).expires_at
  return typeof expiresAt === 'number' ? { token, expiresAt: expiresAt * 1000 } : { token }
}

/** The model array of an E3 answer: `{data:[…]}`, or the later wrapped `{data:{data:[…]}}`. */
export function modelsOf (body: unknown): UpstreamModel[] | undefined {
  const data = (body as { data?: unknown } | undefined)?.data
  const list = Array.isArray(data) ? data : (data as { data?: unknown } | undefined)?.data
  if (!Array.isArray(list)) return undefined
  return list.filter((m): m is UpstreamModel => !!m && typeof (m as UpstreamModel).id === 'string')
}

/** One entry of an E6 chat list (times in milliseconds). */
export interface UpstreamChat {
  id: string
  title?: string
  createdAt?: number
  updatedAt?: number
  chatType?: string
}

/**
 * The chats of an E6 answer: `{success: true, data: [{id, title, created_at, updated_at, chat_type}]}`
 * (times in seconds). `undefined` when `data` is not an array; entries without an id are skipped.
 */
export function chatsOf (body: unknown): UpstreamChat[] | undefined {
  const data = (body as { data?: unknown } | undefined)?.data
  if (!Array.isArray(data)) return undefined
  const out: UpstreamChat[] = []
  for (const item of data) {
    const c = item as Record<string, unknown> | null
    if (!c || typeof c.id !== 'string' || !c.id) continue
    const chat: UpstreamChat = { id: c.id }
    if (typeof c.title === 'string') chat.title = c.title
    if (typeof c.created_at === 'number') chat.createdAt = c.created_at * 1000
    if (typeof c.updated_at === 'number') chat.updatedAt = c.updated_at * 1000
    if (typeof c.chat_type === 'string') chat.chatType = c.chat_type
    out.push(chat)
  }
  return out
}

/** What an E8 (delete chat) answer means. */
export type DeleteAnswer = { kind: 'deleted' } | { kind: 'not_found' } | { kind: 'problem'; problem: UpstreamProblem }

/**
 * Read an E8 answer. Deleted: HTTP 204, an empty 2xx body, or a 2xx JSON body that is not an error
 * (`{success: true, data: true}`; the 2026 site answers `data: {status: true}`, so an explicit
 * `data: false` or `data.status: false` is a refusal). A `Not_Found` answer (any status) means the
 * chat is already gone. Anything else is a problem, classified like every other body.
 */
export function deleteAnswer (status: number, contentType: string, text: string): DeleteAnswer {
  const ok = status >= 200 && status < 300
  if (ok && (status === 204 || text.trim() === '')) return { kind: 'deleted' }
  const problem = ok && contentType.includes('json') ? deleteRefusal(text) : classifyBody(status, contentType, text)
  if (!problem) return { kind: 'deleted' }
  return problem.kind === 'not_found' ? { kind: 'not_found' } : { kind: 'problem', problem }
}

/** What is wrong with a 2xx JSON answer to E8, if anything. */
function deleteRefusal (text: string): UpstreamProblem | undefined {
  let body: unknown
  try { body = JSON.parse(text) } catch { body = undefined }
  if (!body || typeof body !== 'object') return { kind: 'server', message: 'the upstream answered a chat deletion with a body that is not JSON' }
  const b = body as Record<string, unknown>
  const p = classifyErrorObject(b)
  if (p) return p
  const data = b.data
  if (data === false || (typeof data === 'object' && data !== null && (data as { status?: unknown }).status === false)) {
    return { kind: 'server', message: 'the upstream did not delete the chat' }
  }
  return undefined
}

/** The capability flags and limits the gateway relies on (§1.4, PROTOCOL-2026 §4). */
export interface ModelInfo {
  /** The id users type: the upstream id, or the clean name of a dated id (`qwen3-max` for `qwen3-max-2026-01-23`). */
  id: string
  /** The upstream id when it differs from `id` (a dated id listed under its clean name). */
  upstreamId?: string
  created: number
  thinking: boolean
  search: boolean
  vision: boolean
  /** `info.meta.think_skip.enable === false`: the upstream refuses thinking off, so it is always sent on. */
  mustThink?: boolean
  contextLength?: number
  /** Media chat types the model lists (`t2i`, `image_edit`, `t2v` in `info.meta.chat_type`). */
  media?: { t2i: boolean; image_edit: boolean; t2v: boolean }
}

const truthy = (v: unknown): boolean => v === true || (typeof v === 'number' && v > 0)

/** A dated upstream id (`qwen3-max-2026-01-23`). */
const DATED_ID = /-20\d\d-\d\d-\d\d$/
/** What a clean name must look like to be used as an id. */
const CLEAN_ID = /^[a-z0-9][a-z0-9._-]*$/

/** The clean id of a dated upstream id: its `name` lower-cased (`Qwen3-Max` → `qwen3-max`), if usable. */
export function cleanIdOf (m: UpstreamModel): string | undefined {
  if (!DATED_ID.test(m.id) || typeof m.name !== 'string') return undefined
  const clean = m.name.trim().toLowerCase().replace(/\s+/g, '-')
  return clean !== m.id && CLEAN_ID.test(clean) ? clean : undefined
}

export function modelInfo (m: UpstreamModel): ModelInfo {
  const meta = m.info?.meta ?? {}
  const chatTypes = Array.isArray(meta.chat_type) ? meta.chat_type : []
  const modality = Array.isArray(meta.modality) ? meta.modality as unknown[] : []
  const thinkSkip = meta.think_skip as { enable?: unknown } | undefined
  const mustThink = !!thinkSkip && typeof thinkSkip === 'object' && thinkSkip.enable === false
  const clean = cleanIdOf(m)
  const info: ModelInfo = {
    id: clean ?? m.id,
    created: typeof m.info?.created_at === 'number' ? m.info.created_at : 0,
    thinking: mustThink || truthy(meta.abilities?.thinking) || truthy(meta.capabilities?.thinking),
    search: chatTypes.includes('search'),
    vision: truthy(meta.capabilities?.vision) || truthy(meta.abilities?.vision) || modality.includes('image'),
  }
  if (clean) info.upstreamId = m.id
  if (mustThink) info.mustThink = true
  const t2i = chatTypes.includes('t2i')
  const edit = chatTypes.includes('image_edit')
  const t2v = chatTypes.includes('t2v')
  if (t2i || edit || t2v) info.media = { t2i, image_edit: edit, t2v }
  if (typeof meta.max_context_length === 'number') info.contextLength = meta.max_context_length
  return info
}

/** Token counts from an upstream `usage` object (cumulative; the last one seen is final). */
export interface UsageCounts { input?: number; output?: number; reasoning?: number; cached?: number }

function usageCounts (u: Usage): UsageCounts {
  const c: UsageCounts = {}
  if (typeof u.input_tokens === 'number') c.input = u.input_tokens
  if (typeof u.output_tokens === 'number') c.output = u.output_tokens
  if (typeof u.output_tokens_details?.reasoning_tokens === 'number') c.reasoning = u.output_tokens_details.reasoning_tokens
  if (typeof u.prompt_tokens_details?.cached_tokens === 'number') c.cached = u.prompt_tokens_details.cached_tokens
  return c
}

/**
 * One frame, interpreted:
 * - `created` / `info`: bookkeeping (`response.created`, `response.info` keep-alives);
 * - `reasoning`: incremental reasoning text (2025 `think` phase);
 * - `reasoning_snapshot`: the whole reasoning so far (2026 `thinking_summary`, cumulative arrays);
 * - `answer`: incremental answer text; `finished` on the last frame of the answer phase;
 * - `search`: web search results (never answer text);
 * - `error`: an error object inside the stream;
 * - `other`: anything else (tool results, image generation, unknown phases).
 */
export interface FrameView {
  kind: 'created' | 'info' | 'reasoning' | 'reasoning_snapshot' | 'answer' | 'search' | 'error' | 'other'
  text: string
  finished: boolean
  /** From `response.created`, or the frame's own top-level `response_id`. */
  responseId: string | undefined
  /** `response.created`'s `response_index` ("0", "1" when the upstream sends two candidates). */
  responseIndex?: string | undefined
  results: WebSearchInfo[] | undefined
  problem: UpstreamProblem | undefined
  usage: UsageCounts | undefined
}

function view (kind: FrameView['kind'], frame: Frame, extra: Partial<FrameView> = {}): FrameView {
  return {
    kind,
    text: '',
    finished: false,
    responseId: typeof frame.response_id === 'string' ? frame.response_id : undefined,
    results: undefined,
    problem: undefined,
    usage: frame.usage ? usageCounts(frame.usage) : undefined,
    ...extra,
  }
}

export function readFrame (frame: Frame): FrameView {
  const created = frame['response.created']
  if (created) return view('created', frame, { responseId: created.response_id, responseIndex: created.response_index })
  if (frame['response.info']) return view('info', frame)
  if (frame.choices === undefined || frame.error !== undefined || frame.success === false || frame.ret !== undefined) {
    const problem = classifyErrorObject(frame as Record<string, unknown>)
    if (problem) return view('error', frame, { problem })
  }
  const choice = frame.choices?.[0]
  const delta = choice?.delta ?? choice?.message
  if (!delta || delta.role === 'function') return view('other', frame)
  const phase = delta.phase
  const text = typeof delta.content === 'string' ? delta.content : ''
  if (phase === 'web_search' || delta.name === 'web_search') {
    const info = delta.extra?.web_search_info
    return view('search', frame, { results: Array.isArray(info) ? info : [] })
  }
  if (phase === 'think') return view('reasoning', frame, { text })
  if (phase === 'thinking_summary') {
    const thought = delta.extra?.summary_thought?.content
    return view('reasoning_snapshot', frame, { text: Array.isArray(thought) ? thought.join('\n') : '' })
  }
  // Without `output_schema: "phase"` deltas carry no phase at all: that text is the answer.
  if (phase === 'answer' || phase === undefined) {
    return view('answer', frame, { text, finished: phase === 'answer' && delta.status === 'finished' })
  }
  return view('other', frame)
}

/**
 * Which of possibly two interleaved answer candidates is the answer (PROTOCOL-2026 §3): the one whose
 * `response.created` says `response_index` "0"; without an index, the first created; without any
 * `response.created`, the first `response_id` that sends a delta. Frames without a `response_id`
 * belong to the answer (2025). Holds two strings; no allocation per frame.
 */
export class CandidateLock {
  /** The chosen candidate's response id (the parent of a next turn). */
  responseId: string | undefined
  /** The choice came from `response_index` "0" and is final. */
  private final = false
  /** A candidate that is known not to be the answer (index other than "0"). */
  private other: string | undefined

  /** Whether the frame belongs to the answer (bookkeeping frames update the choice and are not). */
  accepts (v: { kind: string; responseId: string | undefined; responseIndex?: string | undefined }): boolean {
    const id = v.responseId
    if (v.kind === 'created') {
      if (id === undefined || this.final) return false
      const index = v.responseIndex
      if (index === '0') {
        this.responseId = id
        this.final = true
      } else if (index !== undefined) {
        if (this.responseId === id) this.responseId = undefined
        this.other = id
      } else {
        this.responseId ??= id
      }
      return false
    }
    if (id === undefined) return true
    if (id === this.other && id !== this.responseId) return false
    this.responseId ??= id
    return id === this.responseId
  }
}
