/**
 * The upstream HTTP client: one undici dispatcher (keep-alive pool), the protocol module for
 * shapes, and the SSE parser for completion streams. It knows nothing about Fastify.
 */
import { randomUUID } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { errors as undiciErrors } from 'undici'
import { InvalidRequestError, UpstreamError } from '../errors.js'
import { SseParser } from '../sse.js'
import {
  BODY_NEAR_LIMIT, DEFAULT_BODY_LIMIT_BYTES, DEFAULT_WEB_VERSION, NEW_CHAT_PAGE, PATHS, TimezoneClock, buildHeaders, chatPage, chatPath, chatsOf, chatsPath, classifyBody,
  classifyErrorObject, completionBody, completionPath, deleteAnswer, modelsOf, newChatBody, problemToError, readFrame, redactForLog,
  sessionOf, signinBody, CandidateLock,
  type ChatType, type Credentials, type Frame, type TurnSpec, type UpstreamChat, type UpstreamModel,
} from './protocol.js'
import type { UpstreamSlots } from './slots.js'

import { TASK_PATHS, taskStatusOf, videoTaskBody, videoTaskOf, type TaskStatus } from './media.js'
import {
  UPLOAD_PATHS, objectUrl, parseStatusOf, putFailure, putHeaders, stsBody, stsGrantOf, type StsGrant, type UploadSpec,
} from './upload.js'

export { problemToError }

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function delay (ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(signal!.reason) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export interface UpstreamClientOptions {
  baseUrl: string
  dispatcher: Dispatcher
  /** Time to the response headers (first byte) of any upstream call. */
  firstByteTimeoutMs: number
  /** Longest silence between two body chunks. */
  idleTimeoutMs: number
  /** Cap on buffered upstream bytes: one SSE line, one SSE event, one JSON body (UpstreamError `limit` beyond). */
  maxBufferBytes: number
  /** The cap on concurrent upstream requests, with its queue budget (none: undici's own queue). */
  slots?: UpstreamSlots
  /** The dispatcher for an identity's own proxy (kept and closed by the owner). */
  proxyDispatcher?: (proxyUrl: string) => Dispatcher
  now?: () => number
  /** The `version` header (the web app's version, `UPSTREAM_WEB_VERSION`); default `0.2.81`. */
  webVersion?: string
  /**
   * Largest serialized completion body sent upstream (`UPSTREAM_BODY_LIMIT_BYTES`); larger ones are
   * refused with 400 `context_length_exceeded` before they are sent. Default 100,000.
   */
  bodyLimitBytes?: number
  /**
   * Debug logging of upstream traffic (pino-compatible; `fastify.log` in the plugin): each call's
   * status, request and non-stream bodies, and every frame of a completion stream, redacted (no
   * token, cookie or other secret) and truncated. Never headers. Whether debug is on is checked once
   * per upstream call; when it is off nothing is formatted.
   */
  logger?: UpstreamLogger
}

/**
 * The part of a pino logger the client uses. Without `isLevelEnabled`, `level` decides (`debug` or
 * `trace`); a logger with neither (Fastify's no-op logger) logs nothing.
 */
export interface UpstreamLogger {
  debug (obj: object, msg?: string): void
  isLevelEnabled? (level: string): boolean
  level?: string
}

/** One upstream answer with what its debug log lines need. */
interface Answer {
  res: Dispatcher.ResponseData
  requestId: string
  /** Set when debug logging is on for this call. */
  log: UpstreamLogger | undefined
}

export interface CallOptions {
  signal?: AbortSignal
  /** Route this call through an identity's own HTTP(S) proxy. */
  proxyUrl?: string | undefined
  requestId?: string
}

export interface ListChatsOptions extends CallOptions {
  /** Page of the list, 1 (newest) by default. */
  page?: number
}

export interface TokenResult { token: string; expiresAt?: number }


/** Where a call comes from in the web app, and what it accepts. */
interface CallPage { page: string; accept?: string }
const ROOT_PAGE: CallPage = { page: '/' }

/** The token (and its expiry) from an E1/E2 answer. */
function sessionToken (body: unknown, what: string): TokenResult {
  const session = sessionOf(body)
  if (!session) throw new UpstreamError('auth_failed', `The upstream ${what} answer carried no token`)
  return session
}

/** Map a transport error (undici) to the gateway error; aborts are passed through untouched. */
export function transportError (err: unknown): unknown {
  if (err instanceof UpstreamError) return err
  const e = err as { name?: string; code?: string; message?: string }
  if (e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED') return err
  if (err instanceof undiciErrors.HeadersTimeoutError || e?.code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new UpstreamError('timeout', 'The upstream did not answer in time (first byte)', { cause: err })
  }
  if (err instanceof undiciErrors.BodyTimeoutError || e?.code === 'UND_ERR_BODY_TIMEOUT') {
    return new UpstreamError('timeout', 'The upstream went silent for too long', { cause: err })
  }
  if (e?.code === 'UND_ERR_CONNECT_TIMEOUT') return new UpstreamError('timeout', 'Connecting to the upstream timed out', { cause: err })
  return new UpstreamError('upstream_error', `Upstream connection failed: ${e?.code ?? e?.message ?? 'unknown error'}`, { cause: err })
}

/**
 * A failed call: when the caller's signal was aborted, its reason (so a request that was given up
 * is never mistaken for an upstream failure and retried elsewhere), else the mapped transport error.
 */
function failure (err: unknown, o: CallOptions): unknown {
  return o.signal?.aborted ? (o.signal.reason ?? err) : transportError(err)
}

/** Read a whole body as text, capped. */
async function readText (body: Dispatcher.ResponseData['body'], cap: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > cap) {
      body.destroy()
      throw new UpstreamError('limit', `An upstream response exceeded ${cap} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size).toString('utf8')
}

/**
 * The frames of one completion stream. Frames come in batches (one per network chunk) so the
 * consumer awaits once per chunk, not once per frame.
 */
export class CompletionStream {
  private readonly iterator: AsyncIterator<Buffer>
  private readonly parser: SseParser
  private batch: Frame[] = []
  private ended = false
  /** `[DONE]` seen. */
  private done = false

  /** `onFrame` sees every event's data before it is parsed (debug logging). */
  constructor (private readonly body: Dispatcher.ResponseData['body'], private readonly maxBytes: number, onFrame?: (data: string) => void) {
    this.iterator = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    this.parser = new SseParser((data) => {
      onFrame?.(data)
      if (data === '[DONE]') { this.done = true; return }
      let frame: unknown
      try { frame = JSON.parse(data) } catch {
        throw new UpstreamError('upstream_error', `The upstream sent a frame that is not JSON: ${data.slice(0, 120)}`)
      }
      if (frame && typeof frame === 'object') this.batch.push(frame as Frame)
    }, maxBytes)
  }

  /**
   * Before the first frame: when the body does not start like an event stream (its first non-blank
   * byte is `{`, `[` or `<`), the whole body as text (capped), else undefined and the bytes go to the
   * SSE parser as usual.
   */
  async unframed (): Promise<string | undefined> {
    let head: Buffer | undefined
    const rest: Buffer[] = []
    let size = 0
    for (;;) {
      let r: IteratorResult<Buffer>
      try {
        r = await this.iterator.next()
      } catch (err) {
        throw transportError(err)
      }
      if (r.done) {
        this.ended = true
        if (!head) return undefined
        return Buffer.concat(rest, size).toString('utf8')
      }
      if (!head) {
        const text = r.value.toString('latin1', 0, Math.min(r.value.length, 64)).trimStart()
        if (text === '') {
          // Only blank so far: let the parser have it (blank lines are nothing to SSE).
          this.parser.push(r.value)
          continue
        }
        if (!'{[<'.includes(text[0]!)) {
          this.parser.push(r.value)
          return undefined
        }
        head = r.value
      }
      size += r.value.length
      if (size > this.maxBytes) {
        this.body.destroy()
        throw new UpstreamError('limit', `An upstream response exceeded ${this.maxBytes} bytes`)
      }
      rest.push(r.value)
    }
  }

  /** The next batch of frames, or `null` at the end of the stream. Throws on transport errors. */
  async next (): Promise<Frame[] | null> {
    while (this.batch.length === 0) {
      if (this.ended || this.done) return null
      try {
        const r = await this.iterator.next()
        if (r.done) {
          this.ended = true
          this.parser.end()
        } else {
          this.parser.push(r.value)
        }
      } catch (err) {
        // Transport errors, an over-long line, a frame that is not JSON: all upstream failures.
        throw transportError(err)
      }
    }
    const out = this.batch
    this.batch = []
    return out
  }

  /** Stop reading and close the upstream connection (client gone, output cut). */
  close (): void {
    if (!this.body.destroyed) this.body.destroy()
  }

  /**
   * The answer is complete: read what is left (the upstream closes right after its last frame) so
   * the connection goes back to the pool, instead of destroying it; anything long is cut.
   */
  release (): void {
    if (this.ended || this.body.destroyed) return
    this.body.dump({ limit: 64 * 1024 }).catch(() => {})
  }
}

export class UpstreamClient {
  private readonly origin: string
  private readonly basePath: string

  /** The concurrency cap (in use and queued counts for metrics), when one is set. */
  get slots (): UpstreamSlots | undefined { return this.opts.slots }

  constructor (private readonly opts: UpstreamClientOptions) {
    const u = new URL(opts.baseUrl)
    this.origin = u.origin
    this.basePath = u.pathname.replace(/\/+$/, '')
  }

  private now (): number { return (this.opts.now ?? Date.now)() }
  private readonly timezone = new TimezoneClock()

  /** The logger when debug logging is on (checked once per upstream call). */
  private debugLogger (): UpstreamLogger | undefined {
    const l = this.opts.logger
    if (!l) return undefined
    const on = typeof l.isLevelEnabled === 'function' ? l.isLevelEnabled('debug') : l.level === 'debug' || l.level === 'trace'
    return on ? l : undefined
  }

  private async call (method: Dispatcher.HttpMethod, path: string, cred: Credentials, body: unknown, o: CallOptions, from: CallPage = ROOT_PAGE): Promise<Answer> {
    const payload = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body)
    const json = payload !== null
    const requestId = o.requestId ?? randomUUID()
    const log = this.debugLogger()
    const fullPath = this.basePath + path
    if (log) log.debug({ requestId, method, path: fullPath, ...(payload ? { body: redactForLog(payload) } : {}) }, 'upstream request')
    let release: (() => void) | undefined
    try {
      // A slot per request, held until its body is consumed or destroyed ('close').
      release = await this.opts.slots?.acquire(o.signal)
      const dispatcher = o.proxyUrl && this.opts.proxyDispatcher ? this.opts.proxyDispatcher(o.proxyUrl) : this.opts.dispatcher
      const now = this.now()
      const res = await dispatcher.request({
        origin: this.origin,
        path: fullPath,
        method,
        headers: buildHeaders(cred, {
          requestId, json, webVersion: this.opts.webVersion ?? DEFAULT_WEB_VERSION, page: from.page, now, timezone: this.timezone.at(now),
          ...(from.accept ? { accept: from.accept } : {}),
        }),
        body: payload,
        signal: o.signal ?? null,
        headersTimeout: this.opts.firstByteTimeoutMs,
        bodyTimeout: this.opts.idleTimeoutMs,
      })
      if (release) {
        if (res.body.destroyed || res.body.closed) release()
        else res.body.once('close', release)
      }
      if (log) log.debug({ requestId, status: res.statusCode, contentType: res.headers['content-type'] }, 'upstream response')
      return { res, requestId, log }
    } catch (err) {
      release?.()
      const e = failure(err, o)
      if (log) log.debug({ requestId, error: (e as Error)?.message ?? String(e) }, 'upstream request failed')
      throw e
    }
  }

  /** A whole non-stream body as text (capped), logged at debug level. */
  private async text (a: Answer, o: CallOptions): Promise<string> {
    let text: string
    try {
      text = await readText(a.res.body, this.opts.maxBufferBytes)
    } catch (err) {
      const e = failure(err, o)
      if (a.log) a.log.debug({ requestId: a.requestId, error: (e as Error)?.message ?? String(e) }, 'upstream body failed')
      throw e
    }
    if (a.log) a.log.debug({ requestId: a.requestId, body: redactForLog(text) }, 'upstream body')
    return text
  }

  /** A JSON call: non-2xx, non-JSON or `success:false` bodies become UpstreamErrors. */
  private async json<T> (method: Dispatcher.HttpMethod, path: string, cred: Credentials, body: unknown, o: CallOptions, from?: CallPage): Promise<T> {
    return this.jsonOf<T>(await this.call(method, path, cred, body, o, from), o)
  }

  /** A JSON call whose endpoint may be missing: `undefined` on HTTP 404 (the body is drained). */
  private async jsonUnless404<T> (method: Dispatcher.HttpMethod, path: string, cred: Credentials, body: unknown, o: CallOptions): Promise<T | undefined> {
    const a = await this.call(method, path, cred, body, o)
    if (a.res.statusCode === 404) {
      await this.text(a, o)
      return undefined
    }
    return this.jsonOf<T>(a, o)
  }

  private async jsonOf<T> (a: Answer, o: CallOptions): Promise<T> {
    const { res } = a
    const ct = String(res.headers['content-type'] ?? '')
    const text = await this.text(a, o)
    if (res.statusCode >= 200 && res.statusCode < 300 && ct.includes('json')) {
      let parsed: unknown
      try { parsed = JSON.parse(text) } catch { parsed = undefined }
      if (parsed && typeof parsed === 'object') {
        const p = classifyErrorObject(parsed as Record<string, unknown>)
        if (!p) return parsed as T
        throw problemToError(p)
      }
    }
    throw problemToError(classifyBody(res.statusCode, ct, text))
  }

  /** E1: a fresh token from a browser cookie. */
  async fetchToken (cookie: string, o: CallOptions = {}): Promise<TokenResult> {
    return sessionToken(await this.json('GET', PATHS.auths, { cookie }, undefined, o), 'session')
  }

  /** E2: sign in with e-mail and password (sent as its sha256 hex). */
  async signIn (email: string, password: string, o: CallOptions = {}): Promise<TokenResult> {
    return sessionToken(await this.json('POST', PATHS.signin, {}, signinBody(email, password), o), 'sign-in')
  }

  /**
   * E3: the model list. `o.signal` cancels the call (the model catalogue aborts it when the app
   * closes); the call then rejects with the signal's reason.
   */
  async listModels (cred: Credentials, o: CallOptions = {}): Promise<UpstreamModel[]> {
    // Primary: `/api/models` (flat; both eras). Fallback: `/api/v2/models/` (wrapped; 2026).
    try {
      return await this.modelList(PATHS.models, cred, o)
    } catch (err) {
      // Only an endpoint that is missing or answers another shape is worth the other path.
      if (o.signal?.aborted || !(err instanceof UpstreamError) || (err.kind !== 'bad_request' && err.kind !== 'upstream_error')) throw err
      try {
        return await this.modelList(PATHS.modelsV2, cred, o)
      } catch (second) {
        if (o.signal?.aborted) throw second
        throw err
      }
    }
  }

  private async modelList (path: string, cred: Credentials, o: CallOptions): Promise<UpstreamModel[]> {
    const list = modelsOf(await this.json('GET', path, cred, undefined, o))
    if (!list) throw new UpstreamError('upstream_error', `The upstream model list (${path}) has no data array`)
    return list
  }

  /**
   * E9: upload credentials (STS) and the object's place for one file. The current path first, the
   * older one when it is missing (404); flat and wrapped answers are both read (PROTOCOL §1.8.1).
   */
  async getSts (cred: Credentials, spec: UploadSpec, o: CallOptions = {}): Promise<StsGrant> {
    const body = stsBody(spec)
    const answer = await this.jsonUnless404('POST', UPLOAD_PATHS.sts, cred, body, o) ??
      await this.json('POST', UPLOAD_PATHS.stsV1, cred, body, o)
    return stsGrantOf(answer)
  }

  /**
   * E10: the object-store PUT, signed with the grant's STS credentials (OSS V1), to the place the
   * grant names (§1.8.2). Goes through the same dispatcher (and identity proxy) as every call.
   */
  async putObject (grant: StsGrant, bytes: Buffer, mime: string, o: CallOptions = {}): Promise<void> {
    const url = new URL(objectUrl(grant))
    const log = this.debugLogger()
    const requestId = o.requestId ?? randomUUID()
    if (log) log.debug({ requestId, method: 'PUT', host: url.host, bytes: bytes.length }, 'upstream object upload')
    let res: Dispatcher.ResponseData
    try {
      const dispatcher = o.proxyUrl && this.opts.proxyDispatcher ? this.opts.proxyDispatcher(o.proxyUrl) : this.opts.dispatcher
      res = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'PUT',
        headers: putHeaders(grant, mime, bytes.length, this.now()),
        body: bytes,
        signal: o.signal ?? null,
        headersTimeout: this.opts.firstByteTimeoutMs,
        bodyTimeout: this.opts.idleTimeoutMs,
      })
    } catch (err) {
      throw failure(err, o)
    }
    const text = await this.text({ res, requestId, log }, o)
    if (res.statusCode !== 200) throw putFailure(res.statusCode, text)
  }

  /**
   * 2026 document parse step (PROTOCOL-2026 §5): start parsing, then poll its status until
   * `success`. False when the site has no parse endpoint (404: the 2025 site), so the document is
   * attached as is. A `failed` status or no result after `poll.attempts` polls throws.
   */
  async parseFile (cred: Credentials, fileId: string, o: CallOptions & { poll?: { intervalMs: number; attempts: number } } = {}): Promise<boolean> {
    const started = await this.jsonUnless404('POST', UPLOAD_PATHS.parse, cred, { file_id: fileId }, o)
    if (started === undefined) return false
    const { intervalMs, attempts } = o.poll ?? { intervalMs: 500, attempts: 60 }
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await delay(intervalMs, o.signal)
      const status = parseStatusOf(await this.json('POST', UPLOAD_PATHS.parseStatus, cred, { file_id_list: [fileId] }, o), fileId)
      if (status === 'success') return true
      if (status === 'failed' || status === 'error') throw new UpstreamError('upstream_error', 'The upstream could not parse the document')
    }
    throw new UpstreamError('timeout', `The upstream did not finish parsing the document after ${attempts} status checks`)
  }

  /**
   * t2v: create the video task (a `stream: false` completion answered with JSON) and return its
   * task id (PROTOCOL §1.9).
   */
  async createVideoTask (cred: Credentials, turn: TurnSpec, o: CallOptions = {}): Promise<string> {
    return videoTaskOf(await this.json('POST', completionPath(turn.chatId), cred, videoTaskBody(turn, this.now()), o, { page: chatPage(turn.chatId), accept: 'application/json' }))
  }

  /** E11: a task's status; the v1 path first, the 2026 one when it is missing (404). */
  async taskStatus (cred: Credentials, taskId: string, o: CallOptions = {}): Promise<TaskStatus> {
    const body = await this.jsonUnless404('GET', TASK_PATHS.v1(taskId), cred, undefined, o) ??
      await this.json('GET', TASK_PATHS.v2(taskId), cred, undefined, o)
    return taskStatusOf(body)
  }

  /**
   * GET a generated file (image or video) from the URL the upstream gave. The caller reads or
   * streams the body and must consume or destroy it. Non-200 answers throw.
   */
  async getMedia (url: string, o: CallOptions = {}): Promise<Dispatcher.ResponseData> {
    const u = new URL(url)
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UpstreamError('upstream_error', 'The upstream gave a media URL that is not http(s)')
    let res: Dispatcher.ResponseData
    try {
      const dispatcher = o.proxyUrl && this.opts.proxyDispatcher ? this.opts.proxyDispatcher(o.proxyUrl) : this.opts.dispatcher
      res = await dispatcher.request({
        origin: u.origin, path: u.pathname + u.search, method: 'GET', headers: { 'user-agent': 'Mozilla/5.0', accept: '*/*', 'accept-encoding': 'identity' },
        signal: o.signal ?? null, headersTimeout: this.opts.firstByteTimeoutMs, bodyTimeout: this.opts.idleTimeoutMs,
      })
    } catch (err) {
      throw failure(err, o)
    }
    if (res.statusCode !== 200) {
      res.body.destroy()
      throw new UpstreamError('upstream_error', `The upstream media URL answered HTTP ${res.statusCode}`)
    }
    return res
  }

  /** E4: a new chat; returns its id. */
  async createChat (cred: Credentials, model: string, chatType: ChatType, o: CallOptions = {}): Promise<string> {
    const body = await this.json<{ data?: { id?: unknown } }>('POST', PATHS.newChat, cred, newChatBody(model, chatType, this.now()), o, { page: NEW_CHAT_PAGE })
    const id = body.data?.id
    if (typeof id !== 'string' || !id) throw new UpstreamError('upstream_error', 'The upstream did not return a chat id')
    return id
  }

  /** E6: one page of the account's chats, newest first (an empty page: past the end). */
  async listChats (cred: Credentials, o: ListChatsOptions = {}): Promise<UpstreamChat[]> {
    const page = o.page ?? 1
    if (!Number.isInteger(page) || page < 1) throw new RangeError(`listChats: page must be a positive integer, got ${page}`)
    const list = chatsOf(await this.json('GET', chatsPath(page), cred, undefined, o))
    if (!list) throw new UpstreamError('upstream_error', 'The upstream chat list has no data array')
    return list
  }

  /**
   * E8: delete a chat. True when it was deleted, false when the upstream says it does not exist
   * (already deleted); any other answer throws an UpstreamError.
   */
  async deleteChat (cred: Credentials, chatId: string, o: CallOptions = {}): Promise<boolean> {
    const a = await this.call('DELETE', chatPath(chatId), cred, undefined, o)
    const text = await this.text(a, o)
    const answer = deleteAnswer(a.res.statusCode, String(a.res.headers['content-type'] ?? ''), text)
    if (answer.kind === 'problem') throw problemToError(answer.problem)
    return answer.kind === 'deleted'
  }

  /** The largest completion body sent (`UPSTREAM_BODY_LIMIT_BYTES`). */
  get bodyLimitBytes (): number {
    return this.opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES
  }

  /** The size in bytes of the completion body `turn` would be sent as. */
  completionBodyBytes (turn: TurnSpec): number {
    return Buffer.byteLength(JSON.stringify(completionBody(turn, this.now())))
  }

  /**
   * E5: start a turn and read up to its commit point (see `untilCommit`). Everything that can go
   * wrong before it (HTTP status, JSON/HTML bodies on 200, error frames, empty streams) throws an
   * UpstreamError, so the caller can still answer with an HTTP status or try another identity.
   */
  async openCompletion (cred: Credentials, turn: TurnSpec, o: CallOptions = {}): Promise<{ stream: CompletionStream; first: Frame[] }> {
    const payload = JSON.stringify(completionBody(turn, this.now()))
    const size = Buffer.byteLength(payload)
    const limit = this.bodyLimitBytes
    // The runner's body guard (src/turn/body-guard.ts) already fitted the turn; this is the backstop.
    if (size > limit) throw bodyTooLargeError(size, limit)
    const a = await this.call('POST', completionPath(turn.chatId), cred, payload, o, { page: chatPage(turn.chatId), accept: 'application/json' })
    const { res, log, requestId } = a
    const ct = String(res.headers['content-type'] ?? '')
    // A captcha answered to a body close to the size limit is the body's fault, not the account's,
    // whether it comes as a plain body, unframed in the stream, or as an SSE frame.
    const nearLimit = size > limit * BODY_NEAR_LIMIT
    const bodyTooLarge = (): UpstreamError => new UpstreamError('challenge', `The upstream answered a ${size}-byte request body (close to UPSTREAM_BODY_LIMIT_BYTES=${limit}) with an anti-bot captcha: the body is too large for it; shorten the conversation`, { requestCaused: true })
    const blame = (p: ReturnType<typeof classifyBody>): UpstreamError => p.kind === 'challenge' && nearLimit ? bodyTooLarge() : problemToError(p)
    if (res.statusCode !== 200 || !ct.includes('text/event-stream')) {
      throw blame(classifyBody(res.statusCode, ct, await this.text(a, o)))
    }
    const onFrame = log ? (data: string) => log.debug({ requestId, frame: redactForLog(data) }, 'upstream frame') : undefined
    const stream = new CompletionStream(res.body, this.opts.maxBufferBytes, onFrame)
    try {
      // A JSON or HTML body sent as an event stream without SSE framing (the 2026 WAF captcha).
      const bare = await stream.unframed()
      if (bare !== undefined) {
        if (log) log.debug({ requestId, body: redactForLog(bare) }, 'upstream body')
        throw blame(classifyBody(res.statusCode, bare.trimStart().startsWith('<') ? 'text/html' : 'application/json', bare))
      }
      return { stream, first: await this.untilCommit(stream) }
    } catch (err) {
      stream.close()
      if (nearLimit && err instanceof UpstreamError && err.kind === 'challenge' && !err.requestCaused) throw bodyTooLarge()
      throw failure(err, o)
    }
  }

  /**
   * Read until the first frame that is more than bookkeeping (`response.created`, `response.info`):
   * up to there, and in the network chunk that brought it, an error frame is still an HTTP status
   * (and may be retried on another identity), because nothing has reached the client.
   */
  private async untilCommit (stream: CompletionStream): Promise<Frame[]> {
    const first: Frame[] = []
    const lock = new CandidateLock()
    for (;;) {
      const batch = await stream.next()
      if (!batch) {
        throw new UpstreamError('upstream_error', first.length
          ? 'The upstream closed the stream before the answer started'
          : 'The upstream closed the stream before sending anything')
      }
      let commit = false
      for (const f of batch) {
        const v = readFrame(f)
        first.push(f)
        if (!lock.accepts(v)) continue
        // Up to the end of the chunk that commits, an error frame is still an HTTP status.
        if (v.kind === 'error') throw problemToError(v.problem!)
        if (commit) continue
        // The commit point: the first frame with something to show, or the end of the answer.
        if (v.finished && !v.text) throw emptyAnswer()
        if (v.text || v.kind === 'search' || v.kind === 'other') commit = true
      }
      if (commit) return first
    }
  }
}

/**
 * A completion body above `UPSTREAM_BODY_LIMIT_BYTES` that cannot be sent: 400
 * `context_length_exceeded` (the upstream answers larger bodies with an anti-bot captcha).
 * `why` says what was tried (e.g. that the history could not go as a file).
 */
export function bodyTooLargeError (size: number, limit: number, why = ''): InvalidRequestError {
  return new InvalidRequestError(
    `The conversation is too long for the upstream: its request body would be ${size} bytes, above the limit of ${limit} (UPSTREAM_BODY_LIMIT_BYTES); the upstream answers larger bodies with an anti-bot captcha.${why ? ` ${why}` : ''} Shorten the messages.`,
    'messages', 'context_length_exceeded')
}

/** A finished answer with no text: never an empty success (DECISIONS "Error codes added"). */
export function emptyAnswer (): UpstreamError {
  return new UpstreamError('empty_answer', 'The upstream finished the answer without any text')
}
