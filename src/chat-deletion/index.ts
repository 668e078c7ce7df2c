/**
 * The chat-deletion service: retention (what may be deleted, when), the background deleter, and
 * the scheduled sweep, put together for one `CHAT_DELETION` mode. Framework-free; the plugin
 * (`plugins/chat-deletion.ts`) wires it to the events, the chat lifecycle service and the close.
 */
import type { UpstreamChat } from '../upstream/protocol.js'
import { ChatDeleter, type DeletionReport } from './deleter.js'
import { ChatRetention } from './retention.js'
import { SweepSchedule, type SweepResult } from './sweep.js'

export { ChatDeleter, type DeletionReport, type DeletionResult } from './deleter.js'
export { ChatRetention } from './retention.js'
export { sweep, SweepSchedule, MAX_SWEEP_PAGES, type SweepOptions, type SweepResult } from './sweep.js'

export type ChatDeletionMode = 'off' | 'after_use' | 'scheduled'

export interface ChatDeletionOptions {
  mode: ChatDeletionMode
  now: () => number
  mediaDelayMs: number
  intervalMs: number
  maxAgeMs: number
  retryDelayMs: number
  /** Delete one chat as `identity` (true deleted, false already gone). */
  remove: (chatId: string, identity: string, signal: AbortSignal) => Promise<boolean>
  list: (identity: string, page: number, signal: AbortSignal) => Promise<UpstreamChat[]>
  /** Identities the sweep lists (those with a token). */
  identities: () => string[]
  /** The sweep spares these too (the ready-chat stock: `qwenStore.readyChats.holds`). */
  spared?: (chatId: string) => Promise<boolean>
  report: (r: DeletionReport) => void
  onSweep: (r: SweepResult) => void
  onSweepError: (identity: string, err: unknown) => void
  concurrency?: number
}

/** What other features call (the `qwenChatDeletion` decorator). Every method is a no-op under `off`. */
export interface ChatDeletion {
  readonly mode: ChatDeletionMode
  /** A conversation entry will continue `chatId`: not deleted until `release`, spared by the sweep. Call it before the response ends. */
  keep (chatId: string): void
  /** The conversation entry of `chatId` expired, was evicted or replaced: delete the chat unless something else holds it. */
  release (chatId: string): void
  /** The client got `chatId`'s media as upstream URLs: delete it only `CHAT_DELETION_MEDIA_DELAY_MS` (or `delayMs`) from now, and not before its request is over. */
  linked (chatId: string, delayMs?: number): void
  /** A task (video generation) runs in `chatId`: never deleted until `taskEnded`. */
  taskStarted (chatId: string): void
  taskEnded (chatId: string): void
  /** Another holder (the ready-chat stock, a conversation store): chats `fn` answers true for are kept. Returns the unregister function. */
  retainedBy (fn: (chatId: string) => boolean): () => void
  /** Whether anything holds `chatId`. */
  held (chatId: string): boolean
  /**
   * Delete `chatId` (as `identity`) in the background now: a ready chat that left the stock unused.
   * Under every mode, `off` included: such a chat never held a conversation, it is only clutter.
   */
  discard (chatId: string, identity: string): void
  /** Chats whose deletion is queued, running or waiting for a retry. */
  readonly pending: number
  /** One sweep now (`scheduled`; under the other modes it lists nothing). */
  sweep (): Promise<SweepResult>
  /** Wait for pending deletions, at most `ms`; true when all settled. */
  flush (ms: number): Promise<boolean>
}

export class ChatDeletionService implements ChatDeletion {
  readonly mode: ChatDeletionMode
  private readonly deleter: ChatDeleter
  private readonly retention: ChatRetention
  private readonly schedule: SweepSchedule

  constructor (o: ChatDeletionOptions) {
    this.mode = o.mode
    this.deleter = new ChatDeleter({ remove: o.remove, report: o.report, retryDelayMs: o.retryDelayMs, ...(o.concurrency ? { concurrency: o.concurrency } : {}) })
    const queue = (chatId: string, identity: string): void => { this.deleter.enqueue(chatId, identity) }
    // Under `scheduled` the retention only answers `held`: nothing is deleted after use.
    this.retention = new ChatRetention({ remove: o.mode === 'after_use' ? queue : () => {}, now: o.now, mediaDelayMs: o.mediaDelayMs })
    this.schedule = new SweepSchedule({
      identities: o.mode === 'scheduled' ? o.identities : () => [],
      list: o.list,
      held: (id) => this.held(id) || this.deleter.has(id),
      ...(o.spared ? { spared: o.spared } : {}),
      remove: queue,
      now: o.now,
      maxAgeMs: o.maxAgeMs,
      onError: o.onSweepError,
    }, o.intervalMs, o.onSweep)
    if (o.mode === 'scheduled') this.schedule.start()
  }

  /** A chat was created (the `chat.created` event). */
  created (chatId: string, identity: string, requestId: string): void {
    if (this.mode !== 'off') this.retention.created(chatId, identity, requestId)
  }

  /** A request's response is over (the `request` event). */
  requestOver (requestId: string): void {
    this.retention.requestOver(requestId)
  }

  keep (chatId: string): void { this.retention.keep(chatId) }
  release (chatId: string): void { this.retention.release(chatId) }
  linked (chatId: string, delayMs?: number): void { this.retention.linked(chatId, delayMs) }
  taskStarted (chatId: string): void { this.retention.taskStarted(chatId) }
  taskEnded (chatId: string): void { this.retention.taskEnded(chatId) }
  retainedBy (fn: (chatId: string) => boolean): () => void { return this.retention.retainedBy(fn) }
  held (chatId: string): boolean { return this.retention.held(chatId) }
  discard (chatId: string, identity: string): void { this.deleter.enqueue(chatId, identity) }

  get pending (): number {
    return this.deleter.size
  }

  sweep (): Promise<SweepResult> {
    return this.schedule.run()
  }

  flush (ms: number): Promise<boolean> {
    return this.deleter.flush(ms)
  }

  /** Stop everything; returns the deletions left undone and the chats still waiting for their media delay. */
  close (): { undone: number; waitingForMedia: number } {
    this.schedule.close()
    return { undone: this.deleter.close(), waitingForMedia: this.retention.close() }
  }
}
