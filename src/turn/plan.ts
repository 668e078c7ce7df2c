/**
 * The turn planner: whether a request continues the upstream chat of its conversation (only the
 * new turn is sent, chained to the last answer) or folds its whole history into a new chat, and,
 * after the answer, what to remember so that the next request can continue it. The mapping and the
 * per-chat lock live in `qwenStore.conversations`; the planner never holds prompt text.
 */
import { randomUUID } from 'node:crypto'
import { conversationKey, splitTurn } from '../conversations/hash.js'
import type { ConversationRef, ConversationStore } from '../conversations/store.js'
import type { ToolCallOut } from '../faces/face.js'
import { foldMessages } from '../openai/request.js'
import type { ChatMessage } from '../schemas.js'
import type { MarkerSet } from '../tools/markers.js'
import { previousNotFound, previousUnavailable, responseKey, responsePointer, type PreviousResponse } from './previous.js'

/** What a request brings for conversation continuity (absent: a one-shot request). */
export interface ConversationInput {
  /** `ownerOf(caller, keyName)`. */
  owner: string
  /** The model name as requested. */
  model: string
  tools: string[]
  messages: ChatMessage[]
  markers: MarkerSet
  /**
   * `previous_response_id` (`previousResponse`): `messages` are only the new input, sent
   * into that response's chat. Such a turn never folds into a new chat (there is no history to
   * fold): when it cannot continue, it fails (`previousUnavailable`, or the upstream's error).
   */
  previous?: PreviousResponse
  /** The gateway's id of this answer (`resp_…`): remembered for a later `previous_response_id` (absent: `store: false`, other APIs). */
  responseId?: string
}

export interface PlannerDeps {
  store: ConversationStore
  mode: 'upstream' | 'fold'
  now: () => number
  /** Why a request that could have continued was folded into a new chat (silent to the client). */
  log: (fields: Record<string, unknown>, msg: string) => void
}

/** The continuation a request may take: the chat, and the new turn folded on its own. */
export interface Continuation {
  key: string
  ref: ConversationRef
  prompt: string
  /** Index of the new turn's first message: only attachments from there on go with it (the chat has the earlier ones). */
  from: number
}

/** The answer as the gateway returned it, and where it lives upstream. */
export interface Answered {
  content: string
  toolCalls: ToolCallOut[]
  identity: string | undefined
  chatId: string
  responseId: string | undefined
}

/** The new turn on its own: the user text, or the tool results in the fold format (with their tools' names). */
function newTurnPrompt (history: ChatMessage[], turn: ChatMessage[], markers: MarkerSet): string {
  const names = new Map<string, string>()
  for (const m of history) {
    for (const c of m.tool_calls ?? []) if (typeof c.id === 'string' && typeof c.function?.name === 'string') names.set(c.id, c.function.name)
  }
  const named = turn.map((m) => {
    const name = typeof m.tool_call_id === 'string' ? names.get(m.tool_call_id) : undefined
    return m.role === 'tool' && typeof m.name !== 'string' && name !== undefined ? { ...m, name } : m
  })
  return foldMessages(named, markers)
}

/** One request's part in its conversation: plan, then `remember` or `fallback`, then `release`. */
export class ConversationTurn {
  /** Set while the continuation is still possible. */
  continuation: Continuation | undefined
  private readonly holder = randomUUID()
  private locked: string | undefined

  constructor (private readonly d: PlannerDeps, private readonly input: ConversationInput, private readonly requestId: string) {}

  /**
   * Whether the request named its history by `previous_response_id` (and sent only the new input):
   * then nothing can be folded into a new chat, not even a corrective retry.
   */
  get byPreviousResponse (): boolean {
    return this.input.previous !== undefined
  }

  /**
   * Look the history up and take its chat's lock, in one store step (so no other turn can move the
   * chat on in between).
   */
  async plan (): Promise<void> {
    const prev = this.input.previous
    if (prev) {
      // Unknown, expired, another caller's, or superseded (a later turn moved the chat on: its
      // entry, and the pointers to it, are gone).
      const got = await this.d.store.begin(prev.pointer, this.holder, this.d.now(), 'pointer')
      if (!got) throw previousNotFound(prev.id)
      if (!got.locked) throw previousUnavailable(prev.id, 'chat_busy')
      this.locked = got.ref.chatId
      this.continuation = { key: got.key, ref: got.ref, prompt: newTurnPrompt([], this.input.messages, this.input.markers), from: 0 }
      return
    }
    const split = splitTurn(this.input.messages)
    if (!split) return
    const { owner, model, tools, markers } = this.input
    const key = conversationKey(owner, model, tools, split.history)
    const got = await this.d.store.begin(key, this.holder, this.d.now())
    if (!got) return
    if (!got.locked) {
      this.d.log({ requestId: this.requestId, chatId: got.ref.chatId, reason: 'chat_busy' }, 'conversation folded into a new chat')
      return
    }
    this.locked = got.ref.chatId
    this.continuation = { key, ref: got.ref, prompt: newTurnPrompt(split.history, split.turn, markers), from: split.history.length }
  }

  /**
   * The continuation cannot be taken: log why and go on in a new chat. `abandon`: the chat is no
   * use any more (the upstream refused the parent), so its entry goes and is announced. A
   * `previous_response_id` turn cannot fold: it throws `cause` (the upstream's error) or a 503.
   */
  async fallback (reason: string, abandon: boolean, cause?: unknown): Promise<void> {
    const c = this.continuation
    if (!c) return
    this.continuation = undefined
    const prev = this.input.previous
    this.d.log({ requestId: this.requestId, chatId: c.ref.chatId, reason }, prev ? 'previous response not continued' : 'conversation folded into a new chat')
    if (abandon) await this.d.store.delete(c.key, 'abandoned')
    await this.release()
    if (prev) throw cause ?? previousUnavailable(prev.id, reason)
  }

  /** After a successful answer: remember where the conversation, answer included, continues. Whether it was remembered. */
  async remember (a: Answered): Promise<boolean> {
    if (a.responseId === undefined) return false
    try {
      await this.put(a, a.responseId)
      return true
    } catch (err) {
      this.d.log({ requestId: this.requestId, err }, 'conversation not remembered: the store failed')
      return false
    }
  }

  private async put (a: Answered, responseId: string): Promise<void> {
    const answer: ChatMessage = {
      role: 'assistant',
      content: a.content,
      ...(a.toolCalls.length ? { tool_calls: a.toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } })) } : {}),
    }
    const { owner, model, tools, messages, previous } = this.input
    // After a `previous_response_id` turn the messages are only its input: such an entry is
    // reached through its response id alone, never by a client's whole history.
    const key = `${previous ? 'chain:' : ''}${conversationKey(owner, model, tools, [...messages, answer])}`
    const put = [{ key, ref: { identity: a.identity, chatId: a.chatId, responseId } }]
    if (this.input.responseId !== undefined) put.push({ key: responseKey(owner, this.input.responseId), ref: responsePointer(key) })
    // One step: the old entry goes (the chat moved on: its parent is no longer the latest answer,
    // one entry per chat), the new ones are put, and the chat's lock is given back.
    const c = this.continuation
    const chatId = this.locked
    await this.d.store.commit({
      ...(c ? { moved: { key: c.key, ref: c.ref } } : {}),
      put,
      ...(chatId !== undefined ? { unlock: { chatId, holder: this.holder } } : {}),
    }, this.d.now())
    this.locked = undefined
  }

  /** Give the chat's lock back (idempotent). */
  async release (): Promise<void> {
    const chatId = this.locked
    if (chatId === undefined) return
    this.locked = undefined
    await this.d.store.unlock(chatId, this.holder)
  }
}

/** Makes a request's {@link ConversationTurn}, or none (fold mode, or a one-shot request). */
export class TurnPlanner {
  constructor (private readonly d: PlannerDeps) {}

  async begin (input: ConversationInput | undefined, requestId: string): Promise<ConversationTurn | undefined> {
    if (this.d.mode !== 'upstream' || !input) return undefined
    const turn = new ConversationTurn(this.d, input, requestId)
    await turn.plan()
    return turn
  }
}
