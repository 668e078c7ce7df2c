/**
 * The upstream HTTP client: one undici dispatcher (keep-alive pool), the protocol module for
 * shapes, and the SSE parser for completion streams. It knows nothing about Fastify.
 */
import { randomUUID } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { errors as undiciErrors } from 'undici'
import { UpstreamError } from '../errors.js'
import { SseLineTooLongError, SseParser } from '../sse.js'
import {
  PATHS, buildHeaders, classifyBody, classifyErrorObject, completionBody, completionPath,
  modelsOf, newChatBody, readFrame, sessionOf, signinBody,
  type ChatType, type Credentials, type Frame, type TurnSpec, type UpstreamModel,
  type UpstreamProblem,
} from './protocol.js'

export interface UpstreamClientOptions {
  baseUrl: string
  dispatcher: Dispatcher
  /** Time to the response headers (first byte) of any upstream call. */
  firstByteTimeoutMs: number
  /** Longest silence between two body chunks. */
  idleTimeoutMs: number
  /** Cap on buffered upstream bytes: one SSE line, one JSON body. */
  maxBufferBytes: number
  /** The dispatcher for an identity's own proxy (kept and closed by the owner). */
  proxyDispatcher?: (proxyUrl: string) => Dispatcher
  now?: () => number
}

export interface CallOptions {
  signal?: AbortSignal
  /** Route this call through an identity's own HTTP(S) proxy. */
  proxyUrl?: string | undefined
  requestId?: string
}

export interface TokenResult { token: string; expiresAt?: number }

/** The token (and its expiry) from an E1/E2 answer. */
function sessionToken (body: unknown, what: string): TokenResult {
  const session = sessionOf(body)
  if (!session) throw new UpstreamError('auth_failed', `The upstream ${what} answer carried no token`)
  return session
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

/** Map a transport error (undici) to the gateway error; aborts are passed through untouched. */
export function transportError (err: unknown): unknown {
  if (err instanceof UpstreamError) return err
  if (err instanceof SseLineTooLongError) return new UpstreamError('upstream_error', err.message, { cause: err })
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
      throw new UpstreamError('upstream_error', `An upstream response exceeded ${cap} bytes`)
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

  constructor (private readonly body: Dispatcher.ResponseData['body'], maxLine: number) {
    this.iterator = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    this.parser = new SseParser((data) => {
      if (data === '[DONE]') { this.done = true; return }
      let frame: unknown
      try { frame = JSON.parse(data) } catch {
        throw new UpstreamError('upstream_error', `The upstream sent a frame that is not JSON: ${data.slice(0, 120)}`)
      }
      if (frame && typeof frame === 'object') this.batch.push(frame as Frame)
    }, maxLine)
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

  constructor (private readonly opts: UpstreamClientOptions) {
    const u = new URL(opts.baseUrl)
    this.origin = u.origin
    this.basePath = u.pathname.replace(/\/+$/, '')
  }

  private now (): number { return (this.opts.now ?? Date.now)() }

  private async call (method: Dispatcher.HttpMethod, path: string, cred: Credentials, body: unknown, o: CallOptions): Promise<Dispatcher.ResponseData> {
    const json = body !== undefined
    try {
      const dispatcher = o.proxyUrl && this.opts.proxyDispatcher ? this.opts.proxyDispatcher(o.proxyUrl) : this.opts.dispatcher
      return await dispatcher.request({
        origin: this.origin,
        path: this.basePath + path,
        method,
        headers: buildHeaders(cred, o.requestId ?? randomUUID(), json),
        body: json ? JSON.stringify(body) : null,
        signal: o.signal ?? null,
        headersTimeout: this.opts.firstByteTimeoutMs,
        bodyTimeout: this.opts.idleTimeoutMs,
      })
    } catch (err) {
      throw failure(err, o)
    }
  }

  /** A JSON call: non-2xx, non-JSON or `success:false` bodies become UpstreamErrors. */
  private async json<T> (method: Dispatcher.HttpMethod, path: string, cred: Credentials, body: unknown, o: CallOptions): Promise<T> {
    const res = await this.call(method, path, cred, body, o)
    const ct = String(res.headers['content-type'] ?? '')
    let text: string
    try {
      text = await readText(res.body, this.opts.maxBufferBytes)
    } catch (err) {
      throw failure(err, o)
    }
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
    const list = modelsOf(await this.json('GET', PATHS.models, cred, undefined, o))
    if (!list) throw new UpstreamError('upstream_error', 'The upstream model list has no data array')
    return list
  }

  /** E4: a new chat; returns its id. */
  async createChat (cred: Credentials, model: string, chatType: ChatType, o: CallOptions = {}): Promise<string> {
    const body = await this.json<{ data?: { id?: unknown } }>('POST', PATHS.newChat, cred, newChatBody(model, chatType, this.now()), o)
    const id = body.data?.id
    if (typeof id !== 'string' || !id) throw new UpstreamError('upstream_error', 'The upstream did not return a chat id')
    return id
  }

  /**
   * E5: start a turn and read up to its commit point (see `untilCommit`). Everything that can go
   * wrong before it (HTTP status, JSON/HTML bodies on 200, error frames, empty streams) throws an
   * UpstreamError, so the caller can still answer with an HTTP status or try another identity.
   */
  async openCompletion (cred: Credentials, turn: TurnSpec, o: CallOptions = {}): Promise<{ stream: CompletionStream; first: Frame[] }> {
    const res = await this.call('POST', completionPath(turn.chatId), cred, completionBody(turn, this.now()), o)
    const ct = String(res.headers['content-type'] ?? '')
    if (res.statusCode !== 200 || !ct.includes('text/event-stream')) {
      let text: string
      try {
        text = await readText(res.body, this.opts.maxBufferBytes)
      } catch (err) {
        throw failure(err, o)
      }
      throw problemToError(classifyBody(res.statusCode, ct, text))
    }
    const stream = new CompletionStream(res.body, this.opts.maxBufferBytes)
    try {
      return { stream, first: await this.untilCommit(stream) }
    } catch (err) {
      stream.close()
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
        if (v.kind === 'error') throw problemToError(v.problem!)
        if (v.kind !== 'created' && v.kind !== 'info') commit = true
        first.push(f)
      }
      if (commit) return first
    }
  }
}
