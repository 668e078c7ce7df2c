/**
 * One chat completion, end to end, as a composition of small units: a lease source (pool or the
 * caller's own credentials), the turn opener with failover (`src/turn/open.ts`), the chat
 * lifecycle service, the transformer's stages, and the face that writes the answer (SSE
 * responder or one JSON body). Knows Node's `ServerResponse` but not Fastify.
 */
import type { ServerResponse } from 'node:http'
import type { ChatLifecycle } from './chats.js'
import { GatewayError, toOpenAIError } from './errors.js'
import type { GatewayEvents } from './events.js'
import type { CollectedAnswer, OutEvent, StreamFace, ToolCallOut, TurnEnd } from './faces/face.js'
import { SseResponder, type HeaderValues } from './faces/openai-sse.js'
import type { Outcome } from './health.js'
import { abortReason } from './lifecycle.js'
import type { AttachmentUploader } from './media/attachment.js'
import type { ResolvedModel } from './models.js'
import type { PreparedChat } from './openai/request.js'
import { CompletionTransformer, type OpenAIUsage, type ThinkingOutput } from './openai/transform.js'
import type { IdentityPool } from './pool.js'
import type { TokenService } from './tokens.js'
import { fitBody } from './turn/body-guard.js'
import { gatherAnswer, type GatheredAnswer } from './turn/gather.js'
import { ClientLeaseSource, PoolLeaseSource, outcomeOf, type Caller, type CredentialLease, type LeaseSource } from './turn/lease.js'
import type { ConversationInput, ConversationTurn, TurnPlanner } from './turn/plan.js'
import { canFallBack, inOwnChat, ownerLease } from './turn/continue.js'
import { correctedPrompt, withCorrection } from './turn/correct.js'
import { withIdentity } from './turn/open.js'
import { pump, settle, type Opened } from './turn/pump.js'
import type { UpstreamClient } from './upstream/client.js'

export { RequestAborted, abortReason } from './lifecycle.js'
export type { Caller } from './turn/lease.js'

export interface CompletionDeps {
  client: UpstreamClient
  chats: ChatLifecycle
  pool: IdentityPool
  tokens: TokenService
  events: GatewayEvents
  thinkingOutput: ThinkingOutput
  maxRetries: number
  keepAliveIntervalMs: number
  maxBufferBytes: number
  now: () => number
  /** Puts a request's attachments on the upstream for the attempt's identity (the upload plugin). */
  uploader?: AttachmentUploader
  /** Conversation continuity (`CONVERSATION_MODE=upstream`); without it every request folds into a new chat. */
  planner?: TurnPlanner
}


export interface CompletionRequest {
  caller: Caller
  model: ResolvedModel
  chat: PreparedChat
  thinking: boolean
  requestId: string
  signal: AbortSignal
  /** The conversation the request belongs to (absent: a one-shot request, never continued or remembered). */
  conversation?: ConversationInput
}

/** What the access log line reports. */
export interface CompletionRecord {
  identity?: string
  /** The chat of the answer the client got. */
  chatId?: string
  /** Every chat created for this request, failed attempts included. */
  chatIds: string[]
  attempts: number
  ttftMs?: number
  usage?: OpenAIUsage
  finishReason?: string
  outcome: 'ok' | 'error' | 'client_closed'
  error?: string
  /**
   * `rec.chatId` stays in use: a conversation entry now continues in it (a chat-deletion plugin
   * spares it; it hears `conversation.expired` when the entry goes).
   */
  remembered?: boolean
  /** The answer continued a conversation's upstream chat (no chat was created for it). */
  continued?: boolean
}

/** One upstream turn in progress: its lease, its stream, its stages, and the prompt it answers. */
interface Turn { lease: CredentialLease; opened: Opened; t: CompletionTransformer; prompt: string }

/** A whole answer and where it came from. */
interface Collected { prompt: string; identity: string | undefined; chatId: string; answer: GatheredAnswer }

/** Give a turn's upstream connection and lease back. */
function finishTurn (turn: Turn, outcome: Outcome): void {
  settle(turn.opened, turn.t)
  turn.lease.release(outcome)
}

export function newRecord (): CompletionRecord {
  return { attempts: 0, chatIds: [], outcome: 'error' }
}

export class CompletionRunner {
  constructor (private readonly d: CompletionDeps) {}

  private source (caller: Caller): LeaseSource {
    return caller.kind === 'client'
      ? new ClientLeaseSource(this.d.tokens, caller.token, caller.cookie)
      : new PoolLeaseSource(this.d.pool, this.d.tokens)
  }

  private transformer (req: CompletionRequest): CompletionTransformer {
    const c = req.chat
    return new CompletionTransformer({ thinkingOutput: this.d.thinkingOutput, stop: c.stop, maxTokens: c.maxTokens, tools: c.tools, output: c.output, maxHeldChars: this.d.maxBufferBytes })
  }

  /** Run `attempt` under a lease with failover; the record and the failover events follow along. */
  private withIdentity<T> (req: CompletionRequest, rec: CompletionRecord, attempt: (lease: CredentialLease) => Promise<T>): Promise<{ lease: CredentialLease; value: T }> {
    return withIdentity(this.source(req.caller), req.signal, this.d.maxRetries, attempt, {
      onLease: (lease) => { rec.identity = lease.label },
      onFailover: (lease, err, n) => {
        this.d.events.emit('failover', { requestId: req.requestId, identity: lease.label, code: err.code, error: err.message, attempt: n })
      },
    })
  }

  /** One attempt: a new chat, then the completion (of `prompt`) up to its first frames. */
  private async openTurn (req: CompletionRequest, rec: CompletionRecord, lease: CredentialLease, prompt: string): Promise<Opened> {
    rec.attempts++
    try {
      return await this.openInChat(req, rec, lease, prompt, false)
    } catch (err) {
      // A ready chat the upstream refuses is dropped (deleted after the request); one is created inline.
      if (rec.chatId === undefined || !this.d.chats.readyRefused(rec.chatId, err) || req.signal.aborted) throw err
      return await this.openInChat(req, rec, lease, prompt, true)
    }
  }

  private async openInChat (req: CompletionRequest, rec: CompletionRecord, lease: CredentialLease, prompt: string, fresh: boolean): Promise<Opened> {
    const o = { signal: req.signal, requestId: req.requestId, proxyUrl: lease.proxyUrl }
    const chatId = await this.d.chats.create(lease, req.model.base, req.model.chatType, { ...o, fresh })
    rec.chatIds.push(chatId)
    rec.chatId = chatId
    const files = await this.filesFor(req, lease)
    const turn = await fitBody({
      chatId, model: req.model.base, chatType: req.model.chatType, thinking: req.thinking, content: prompt, parentId: null, files,
    }, { client: this.d.client, uploader: this.d.uploader }, lease, o)
    const { stream, first } = await this.d.client.openCompletion(lease.cred, turn, o)
    this.d.chats.used(chatId)
    return { stream, first, chatId }
  }

  /** One attempt in the conversation's own chat: only the new turn, chained to the last answer. */
  private async openContinuation (req: CompletionRequest, rec: CompletionRecord, lease: CredentialLease, conv: ConversationTurn): Promise<Opened> {
    const c = conv.continuation!
    rec.attempts++
    rec.chatId = c.ref.chatId
    const o = { signal: req.signal, requestId: req.requestId, proxyUrl: lease.proxyUrl }
    const files = await this.filesFor(req, lease, c.from)
    const { stream, first } = await this.d.client.openCompletion(lease.cred, {
      chatId: c.ref.chatId, model: req.model.base, chatType: req.model.chatType, thinking: req.thinking, content: c.prompt, parentId: c.ref.responseId, files,
    }, o)
    return { stream, first, chatId: c.ref.chatId }
  }

  /** Continue the conversation's upstream chat, or undefined after a (logged) fallback. */
  private async continueTurn (req: CompletionRequest, rec: CompletionRecord, conv: ConversationTurn): Promise<Turn | undefined> {
    const c = conv.continuation!
    const got = await inOwnChat(conv, ownerLease(req.caller, c.ref.identity, this.d.pool, this.d.tokens), req.signal,
      (l) => this.openContinuation(req, rec, l, conv), (lease) => { rec.identity = lease.label })
    return got && { lease: got.lease, opened: got.value, t: this.transformer(req), prompt: c.prompt }
  }

  /** Remember where the conversation continues (a store failure is logged, never fails the answer). */
  private async remember (conv: ConversationTurn | undefined, rec: CompletionRecord, turn: Turn, content: string, toolCalls: ToolCallOut[]): Promise<void> {
    if (conv?.continuation) rec.continued = true
    if (conv) rec.remembered = await conv.remember({ content, toolCalls, identity: turn.lease.identityId, chatId: turn.opened.chatId, responseId: turn.t.responseId })
  }

  /** The attachments (from message `from` on), uploaded for this attempt's identity (each identity references only its own files). */
  private async filesFor (req: CompletionRequest, lease: CredentialLease, from = 0): Promise<unknown[]> {
    // A continued turn carries only its own messages' attachments (`messages[i]…`, i >= from).
    const list = from === 0 ? req.chat.attachments : req.chat.attachments.filter((a) => Number(/^messages\[(\d+)\]/.exec(a.param)?.[1] ?? from) >= from)
    if (list.length === 0) return []
    // A wiring bug, not the client's or the account's: a 500.
    if (!this.d.uploader) throw new Error('attachments need the upload plugin, which is not registered')
    return await this.d.uploader.filesFor(lease, list, { signal: req.signal, requestId: req.requestId })
  }

  private turnEnd (t: CompletionTransformer, prompt: string): TurnEnd {
    const sources = t.searchResults.flatMap((r) => typeof r.url === 'string' && r.url ? [{ url: r.url, title: typeof r.title === 'string' ? r.title : r.url }] : [])
    return { reason: t.finishReason!, usage: t.usageFor(prompt), ...(t.stopSequence !== undefined ? { stopSequence: t.stopSequence } : {}), ...(sources.length ? { sources } : {}) }
  }

  /** Lease, chat and first frames of one upstream turn of `prompt` (failover included). */
  private async open (req: CompletionRequest, rec: CompletionRecord, prompt: string, conv?: ConversationTurn): Promise<Turn> {
    if (conv?.continuation) {
      const turn = await this.continueTurn(req, rec, conv)
      if (turn) return turn
    }
    const { lease, value: opened } = await this.withIdentity(req, rec, (l) => this.openTurn(req, rec, l, prompt))
    return { lease, opened, t: this.transformer(req), prompt }
  }

  /**
   * Stream the completion on `res`, rendered by `face`. Failures before the first upstream frame throw (the caller
   * answers with an HTTP status); after it, `commit()` is called for the headers the response must
   * carry, and failures become an error frame. Never throws after commit; whatever happens, the
   * lease and the upstream body are given back.
   */
  async stream (req: CompletionRequest, res: ServerResponse, commit: () => HeaderValues, rec: CompletionRecord, face: StreamFace): Promise<void> {
    const started = this.d.now()
    const conv = await this.d.planner?.begin(req.conversation, req.requestId)
    let turn: Turn | undefined
    try {
      // Throws before commit → HTTP error status.
      turn = await this.open(req, rec, req.chat.prompt, conv)
    } catch (err) {
      await conv?.release()
      throw err
    }
    const sse = new SseResponder(res, req.signal, this.d.keepAliveIntervalMs, face.keepAlive)
    // The answer as the client gets it, for the conversation map (none after a corrective turn).
    let content = ''
    const toolCalls: ToolCallOut[] = []
    let remember = conv !== undefined
    let outcome: Outcome = { kind: 'neutral' }
    let committed = false
    try {
      sse.open(commit())
      committed = true
      rec.ttftMs = this.d.now() - started
      let pending = face.start()
      const emit = async (events: OutEvent[]): Promise<void> => {
        for (const e of events) {
          if (e.kind === 'content') content += e.text
          else if (e.kind === 'tool_call') toolCalls.push(e.call)
        }
        await sse.write(pending + face.events(events))
        pending = ''
      }
      try {
        await pump(turn.opened, turn.t, emit)
      } catch (err) {
        // A forced tool call or JSON answer that was not valid: one corrective turn (nothing of
        // the first answer went out: those stages hold everything back until it is valid).
        // Not for a previous_response_id turn: a new chat would lose the history the client did not send.
        const prompt = conv?.byPreviousResponse === true ? undefined : correctedPrompt(req.chat, err)
        if (prompt === undefined) throw err
        finishTurn(turn, { kind: 'neutral' })
        turn = undefined
        remember = false
        turn = await this.open(req, rec, prompt)
        await pump(turn.opened, turn.t, emit)
      }
      const end = this.turnEnd(turn.t, turn.prompt)
      await sse.write(pending + face.end(end))
      rec.usage = end.usage
      rec.finishReason = end.reason
      rec.outcome = 'ok'
      outcome = { kind: 'success' }
      if (remember) await this.remember(conv, rec, turn, content, toolCalls)
    } catch (err) {
      // Nothing was sent yet: the caller answers with a status (the lease and body are given back below).
      if (!committed) throw err
      const reason = abortReason(req.signal)
      if (sse.gone || reason?.kind === 'client_closed') {
        rec.outcome = 'client_closed'
      } else {
        // Upstream failures arrive mapped; anything else is a gateway bug (500 frame, account not blamed).
        const e = reason ? reason.toError() : err
        if (!reason) outcome = outcomeOf(e)
        const { status, body } = toOpenAIError(e)
        rec.outcome = 'error'
        rec.error = body.error.message
        sse.fail(face.fail({ status, ...body.error }))
      }
    } finally {
      sse.end()
      if (turn) finishTurn(turn, outcome)
      await conv?.release()
    }
  }

  /**
   * Collect the whole completion into one JSON body. Until the response is sent the client has
   * received nothing, so a failure anywhere in the answer fails over like a stream before its
   * commit point.
   */
  async collect (req: CompletionRequest, rec: CompletionRecord): Promise<CollectedAnswer> {
    const started = this.d.now()
    const conv = await this.d.planner?.begin(req.conversation, req.requestId)
    try {
      let corrections = 0
      const got = await this.collectContinued(req, rec, conv, started) ??
        // A forced tool call or JSON answer that was not valid gets one corrective turn.
        await withCorrection(req.chat, async (prompt) => {
          if (prompt !== req.chat.prompt) corrections++
          const { lease, value } = await this.withIdentity(req, rec, async (l) => {
            const opened = await this.openTurn(req, rec, l, prompt)
            rec.ttftMs = this.d.now() - started
            return { chatId: opened.chatId, answer: await gatherAnswer(opened, this.transformer(req), req.signal, this.d.maxBufferBytes) }
          })
          lease.release({ kind: 'success' })
          return { prompt, identity: lease.identityId, ...value }
        })
      const { t, content, reasoning, toolCalls } = got.answer
      const end = this.turnEnd(t, got.prompt)
      rec.usage = end.usage
      rec.finishReason = end.reason
      rec.outcome = 'ok'
      if (conv?.continuation) rec.continued = true
      if (corrections === 0 && conv) rec.remembered = await conv.remember({ content, toolCalls, identity: got.identity, chatId: got.chatId, responseId: t.responseId })
      return { content, reasoning, toolCalls, end }
    } catch (err) {
      const reason = abortReason(req.signal)
      if (reason?.kind === 'client_closed') {
        rec.outcome = 'client_closed'
        throw reason
      }
      const e = reason ? reason.toError() : err
      rec.outcome = 'error'
      rec.error = e instanceof GatewayError ? e.message : String(err)
      throw e
    } finally {
      await conv?.release()
    }
  }

  /**
   * The whole answer from the conversation's own chat, or undefined to fold into a new chat: no
   * continuation, or it failed before anything reached the client (logged, its entry abandoned).
   */
  private async collectContinued (req: CompletionRequest, rec: CompletionRecord, conv: ConversationTurn | undefined, started: number): Promise<Collected | undefined> {
    if (!conv?.continuation) return undefined
    const turn = await this.continueTurn(req, rec, conv)
    if (!turn) return undefined
    rec.ttftMs = this.d.now() - started
    try {
      const answer = await gatherAnswer(turn.opened, turn.t, req.signal, this.d.maxBufferBytes)
      turn.lease.release({ kind: 'success' })
      return { prompt: turn.prompt, identity: turn.lease.identityId, chatId: turn.opened.chatId, answer }
    } catch (err) {
      turn.lease.release(abortReason(req.signal) ? { kind: 'neutral' } : outcomeOf(err))
      if (!canFallBack(err, req.signal)) throw err
      // A previous_response_id turn cannot fold: its client gets this error as it is.
      await conv.fallback(`the continued answer failed: ${err.message}`, true, err)
      return undefined
    }
  }
}
