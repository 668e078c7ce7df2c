/**
 * One chat completion, end to end: pick an identity, open the upstream turn (with failover while
 * nothing has reached the client), then stream the transformed answer or collect it into one JSON
 * body. Knows Node's `ServerResponse` but not Fastify.
 */
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { GatewayError, UpstreamError, toOpenAIError } from './errors.js'
import type { ResolvedModel } from './models.js'
import { ChunkWriter, DONE, KEEP_ALIVE, chatCompletion, completionId, errorFrame, type ChatCompletion } from './openai/chunks.js'
import type { PreparedChat } from './openai/request.js'
import { CompletionTransformer, type OpenAIUsage, type OutEvent, type ThinkingOutput } from './openai/transform.js'
import { credentialsOf, type IdentityPool, type Lease as PoolLease, type Outcome } from './pool.js'
import type { TokenService } from './tokens.js'
import { transportError, type CompletionStream, type UpstreamClient } from './upstream/client.js'
import type { Credentials, Frame } from './upstream/protocol.js'

export interface CompletionDeps {
  client: UpstreamClient
  pool: IdentityPool
  tokens: TokenService
  thinkingOutput: ThinkingOutput
  maxRetries: number
  keepAliveIntervalMs: number
  maxBufferBytes: number
  now: () => number
}

/** Who the request runs as: the gateway's pool (server mode) or the caller's own credentials. */
export type Caller = { kind: 'pool' } | { kind: 'client'; token: string | undefined; cookie: string | undefined }

export interface CompletionRequest {
  caller: Caller
  model: ResolvedModel
  chat: PreparedChat
  thinking: boolean
  requestId: string
  signal: AbortSignal
}

/** What the access log line reports. */
export interface CompletionRecord {
  identity?: string
  chatId?: string
  attempts: number
  ttftMs?: number
  usage?: OpenAIUsage
  finishReason?: string
  outcome: 'ok' | 'error' | 'client_closed'
  error?: string
}

interface Lease {
  pool: PoolLease | undefined
  cred: Credentials
  label: string
  proxyUrl: string | undefined
}

/** What an upstream failure says about the identity that met it. */
export function outcomeOf (err: unknown): Outcome {
  if (!(err instanceof UpstreamError)) return { kind: 'neutral' }
  switch (err.kind) {
    case 'rate_limited': return { kind: 'rate_limited', error: err.message, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) }
    case 'challenge': return { kind: 'challenge', error: err.message }
    case 'bad_request':
    case 'no_identity':
      return { kind: 'neutral' }
    default: return { kind: 'failure', error: err.message }
  }
}

interface Opened {
  lease: Lease
  stream: CompletionStream
  first: Frame[]
  chatId: string
}

/** The upstream closed the stream cleanly but never said the answer was finished: not a success. */
function truncated (): UpstreamError {
  return new UpstreamError('upstream_error', 'The upstream ended the stream before the answer was finished')
}

/** Why a request's signal was aborted. */
export class RequestAborted extends Error {
  constructor (readonly kind: 'client_closed' | 'timeout' | 'shutdown') {
    super(`request aborted: ${kind}`)
    this.name = 'RequestAborted'
  }

  /** The error the client sees (none for a client that left). */
  toError (): GatewayError {
    if (this.kind === 'timeout') return new UpstreamError('timeout', 'The request took longer than the gateway allows (REQUEST_TIMEOUT_MS)')
    return new GatewayError('The gateway is shutting down; retry the request', { status: 503, type: 'server_error', code: 'server_shutting_down' })
  }
}

/** The abort reason when `signal` was aborted, or undefined. */
export function abortReason (signal: AbortSignal): RequestAborted | undefined {
  if (!signal.aborted) return undefined
  return signal.reason instanceof RequestAborted ? signal.reason : new RequestAborted('client_closed')
}

export class CompletionRunner {
  constructor (private readonly d: CompletionDeps) {}

  private async lease (caller: Caller, tried: Set<string>): Promise<Lease> {
    if (caller.kind === 'client') {
      const token = caller.token || (caller.cookie ? await this.d.tokens.clientToken(caller.cookie) : undefined)
      return { pool: undefined, cred: { token, cookie: caller.cookie }, label: 'client', proxyUrl: undefined }
    }
    // No waiting for the start-up token fetch of every identity: `attempt` fetches this one's if needed.
    const pl = this.d.pool.acquire(tried)
    tried.add(pl.identity.id)
    return { pool: pl, cred: credentialsOf(pl.identity), label: pl.identity.label, proxyUrl: pl.identity.proxyUrl }
  }

  private release (lease: Lease, outcome: Outcome): void {
    if (lease.pool) this.d.pool.release(lease.pool, outcome)
  }

  /**
   * Open the upstream turn. Failures before the first frame are retried on the next identity (up
   * to `maxRetries`); the client sees one clean response or the last failure.
   */
  private async open (req: CompletionRequest, rec: CompletionRecord): Promise<Opened> {
    const tried = new Set<string>()
    let last: UpstreamError | undefined
    for (let attempt = 0; attempt <= this.d.maxRetries; attempt++) {
      let lease: Lease
      try {
        lease = await this.lease(req.caller, tried)
      } catch (err) {
        if (last && err instanceof UpstreamError) break
        throw transportError(err)
      }
      rec.identity = lease.label
      try {
        return await this.attempt(req, rec, lease)
      } catch (err) {
        const aborted = abortReason(req.signal)
        this.release(lease, aborted ? { kind: 'neutral' } : outcomeOf(err))
        if (aborted) throw aborted
        if (!(err instanceof UpstreamError)) throw err
        last = err
        if (!err.retryable || req.caller.kind === 'client') throw err
      }
    }
    if (last!.kind === 'rate_limited') {
      // Rate limited everywhere: tell the client when the first account comes back. Otherwise the
      // retry budget ran out while other accounts are fine: a quick retry will do.
      const everywhere = this.d.pool.exhausted()
      throw everywhere.kind === 'rate_limited'
        ? everywhere
        : new UpstreamError('rate_limited', `${last!.message}; other accounts are available, retry shortly`, { retryAfterMs: 1000 })
    }
    throw last!
  }

  /**
   * One identity: a missing or expired token is fetched first; an authentication failure refreshes
   * the token and tries the same identity once more.
   */
  private async attempt (req: CompletionRequest, rec: CompletionRecord, lease: Lease): Promise<Opened> {
    const identity = lease.pool?.identity
    if (identity && this.d.pool.needsTokenNow(identity)) {
      const r = await this.d.tokens.refresh(identity)
      if (!r.success) throw r.cause ?? new UpstreamError('auth_failed', `No valid token for ${identity.label}: ${r.error}`)
      lease.cred = credentialsOf(identity)
    }
    let refreshed = false
    for (;;) {
      rec.attempts++
      try {
        const o = { signal: req.signal, requestId: req.requestId, proxyUrl: lease.proxyUrl }
        const chatId = await this.d.client.createChat(lease.cred, req.model.base, req.model.chatType, o)
        rec.chatId = chatId
        const { stream, first } = await this.d.client.openCompletion(lease.cred, {
          chatId, model: req.model.base, chatType: req.model.chatType, thinking: req.thinking, content: req.chat.prompt, parentId: null,
        }, o)
        return { lease, stream, first, chatId }
      } catch (err) {
        if (!(err instanceof UpstreamError) || err.kind !== 'auth_failed' || refreshed) throw err
        refreshed = true
        if (identity?.canRefresh) {
          const r = await this.d.tokens.refresh(identity)
          // A refresh that met a challenge, a rate limit or an outage says more than "unauthorized".
          if (!r.success) throw r.cause && r.cause.kind !== 'auth_failed' ? r.cause : err
          lease.cred = credentialsOf(identity)
        } else if (req.caller.kind === 'client' && req.caller.cookie) {
          try {
            lease.cred = { token: await this.d.tokens.clientToken(req.caller.cookie, true), cookie: req.caller.cookie }
          } catch {
            throw err
          }
        } else {
          throw err
        }
      }
    }
  }

  /**
   * Stream the completion on `res`. Failures before the first upstream frame throw (the caller
   * answers with an HTTP status); after it, `commit()` is called for the headers the response must
   * carry, and failures become an error frame. Never throws after commit.
   */
  async stream (req: CompletionRequest, res: ServerResponse, commit: () => Record<string, string | number | string[] | undefined>, rec: CompletionRecord): Promise<void> {
    const started = this.d.now()
    const opened = await this.open(req, rec) // throws before commit → HTTP error status
    const t = new CompletionTransformer({ thinkingOutput: this.d.thinkingOutput, stop: req.chat.stop, maxTokens: req.chat.maxTokens })
    const w = new ChunkWriter(completionId(), Math.floor(started / 1000), req.model.requested, req.chat.includeUsage)
    res.writeHead(200, {
      ...commit(),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    })
    res.flushHeaders()
    rec.ttftMs = this.d.now() - started
    const closed = new Promise<void>((resolve) => {
      if (res.destroyed || res.closed) resolve()
      else res.once('close', resolve)
    })
    const aborted = new Promise<void>((resolve) => {
      if (req.signal.aborted) resolve()
      else req.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    // Backpressure: wait for the client to drain, but never past the request's signal (timeout,
    // shutdown): a client that stops reading is cut off rather than holding its identity forever.
    const write = async (s: string): Promise<void> => {
      if (!s || res.write(s)) return
      await Promise.race([once(res, 'drain'), closed, aborted])
      if (req.signal.aborted && res.writableNeedDrain) {
        res.destroy()
        throw abortReason(req.signal)
      }
    }
    const keepAlive = setTimeout(function tick () {
      if (!res.writableEnded && !res.writableNeedDrain) res.write(KEEP_ALIVE)
      keepAlive.refresh()
    }, this.d.keepAliveIntervalMs)
    keepAlive.unref()
    let outcome: Outcome = { kind: 'neutral' }
    try {
      let pending = w.role()
      await this.pump(opened, t, async (events) => {
        await write(pending + w.events(events))
        pending = ''
        keepAlive.refresh()
      })
      let tail = w.finish(t.finishReason!)
      const usage = t.usageFor(req.chat.prompt)
      if (req.chat.includeUsage) tail += w.usage(usage)
      await write(tail + DONE)
      rec.usage = usage
      rec.finishReason = t.finishReason!
      rec.outcome = 'ok'
      outcome = { kind: 'success' }
    } catch (err) {
      const reason = abortReason(req.signal)
      if (res.destroyed || reason?.kind === 'client_closed') {
        rec.outcome = 'client_closed'
      } else {
        const e = reason ? reason.toError() : transportError(err)
        if (!reason) outcome = outcomeOf(e)
        const { body } = toOpenAIError(e)
        rec.outcome = 'error'
        rec.error = body.error.message
        if (!res.writableEnded) res.write(errorFrame(body.error) + DONE)
      }
    } finally {
      clearTimeout(keepAlive)
      this.settle(opened, t, outcome)
      if (!res.writableEnded) res.end()
    }
  }

  /** Collect the whole completion into one JSON body. */
  async collect (req: CompletionRequest, rec: CompletionRecord): Promise<ChatCompletion> {
    const started = this.d.now()
    const opened = await this.open(req, rec)
    rec.ttftMs = this.d.now() - started
    const t = new CompletionTransformer({ thinkingOutput: this.d.thinkingOutput, stop: req.chat.stop, maxTokens: req.chat.maxTokens })
    let content = ''
    let reasoning = ''
    let outcome: Outcome = { kind: 'neutral' }
    try {
      await this.pump(opened, t, (events) => {
        for (const e of events) {
          if (e.kind === 'content') content += e.text
          else reasoning += e.text
        }
        if (content.length + reasoning.length > this.d.maxBufferBytes) {
          throw new UpstreamError('upstream_error', `The answer exceeded ${this.d.maxBufferBytes} characters`)
        }
      })
      const usage = t.usageFor(req.chat.prompt)
      rec.usage = usage
      rec.finishReason = t.finishReason!
      rec.outcome = 'ok'
      outcome = { kind: 'success' }
      return chatCompletion(completionId(), Math.floor(started / 1000), req.model.requested, content, reasoning, t.finishReason!, usage)
    } catch (err) {
      const reason = abortReason(req.signal)
      if (reason?.kind === 'client_closed') {
        rec.outcome = 'client_closed'
        throw reason
      }
      const e = reason ? reason.toError() : transportError(err)
      if (!reason) outcome = outcomeOf(e)
      rec.outcome = 'error'
      rec.error = e instanceof GatewayError ? e.message : String(err)
      throw e
    } finally {
      this.settle(opened, t, outcome)
    }
  }

  /**
   * Feed the upstream frames through the transformer until the answer ends, handing each network
   * chunk's events to `emit` (including the events of good frames that precede an error frame in
   * the same chunk, before the error is thrown). A stream that ends before the answer does is an
   * error.
   */
  private async pump (opened: Opened, t: CompletionTransformer, emit: (events: OutEvent[]) => Promise<void> | void): Promise<void> {
    let batch: Frame[] | null = opened.first
    while (batch) {
      let failure: unknown
      try {
        for (const f of batch) t.push(f)
      } catch (err) {
        failure = err
      }
      const events = t.events
      t.events = []
      await emit(events)
      if (failure !== undefined) throw failure
      if (t.ended) return
      batch = await opened.stream.next()
    }
    throw truncated()
  }

  /** Give the upstream connection back (drained when the answer finished, cut otherwise) and the identity. */
  private settle (opened: Opened, t: CompletionTransformer, outcome: Outcome): void {
    if (t.upstreamFinished) opened.stream.release()
    else opened.stream.close()
    this.release(opened.lease, outcome)
  }
}
