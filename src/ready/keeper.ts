/**
 * Ready chats (issue #12): each usable identity keeps up to `perIdentity` upstream chats created
 * ahead, per model and chat type in demand, so that a new conversation starts its completion at
 * once. Chats are handed out from the stock (`ReadyChatStock`, shared across replicas when the
 * store is), refilled in the background after each take with a bounded number of creations at
 * once, and discarded (deleted through the chat-deletion plugin) when too old or when their
 * identity stops being usable. Framework-free; `plugins/ready-chats.ts` wires it.
 */
import type { ChatType } from '../upstream/protocol.js'
import { Demand } from './demand.js'
import { RefillGate } from './gate.js'
import { CreationQueue } from './queue.js'
import { stockKey, type ReadyChat, type ReadyChatStock } from './stock.js'

export interface ReadyChatsOptions {
  stock: ReadyChatStock
  /** Chats kept per identity, model and chat type (0: off). */
  perIdentity: number
  /** A ready chat older than this is discarded, never handed out. */
  maxAgeMs: number
  now: () => number
  /** The identities that may get ready chats now: a token, not cooling down, not down, not disabled. */
  usable: () => string[]
  /** Create one chat ahead as `identity` (not announced: nobody uses it yet). */
  create: (identity: string, model: string, chatType: ChatType, signal: AbortSignal) => Promise<string>
  /** Delete a chat that leaves the stock unused (through the chat-deletion plugin). */
  discard: (chatId: string, identity: string) => void
  /** A background creation or stock operation failed (logged; the request path never sees it). */
  onError: (what: string, err: unknown) => void
  /** Creations running at once, default 4. */
  concurrency?: number
  /** Kinds asked for within this window are kept warm, default 5 minutes. */
  demandWindowMs?: number
  /** At most this many (model, chat type) pairs are kept warm, default 8. */
  maxKinds?: number
  /** A key whose creation failed is not refilled for this long, default 30 s. */
  failureBackoffMs?: number
  /**
   * Refills asked for by takes wait until the chats handed out have started their completions, at
   * most this long after the first ask, default 1 s (see `gate.ts`).
   */
  refillDeferMaxMs?: number
}

interface Job { key: string; identity: string; model: string; chatType: ChatType }

/**
 * Chat types kept warm: text answers, where the chat creation is most of the wait before the first
 * token. Media generations (images, video) take seconds anyway and keep their chats for their links.
 */
export const WARM_CHAT_TYPES: ReadonlySet<string> = new Set(['t2t', 'search'])

export class ReadyChats {
  private readonly demand: Demand
  /** Keys this process filled, with what they stand for (pruning walks them). */
  private readonly keys = new Map<string, Job>()
  private readonly failedAt = new Map<string, number>()
  /** Keys whose stock is being counted, and those to count again after (a take came meanwhile). */
  private readonly counting = new Set<string>()
  private readonly recount = new Set<string>()
  /** Refills asked for by takes wait for the chats handed out to start (see `gate.ts`). */
  private readonly gate: RefillGate<Job>
  /** Creations waiting or running (counted per key against the target). */
  private readonly queue: CreationQueue<Job>
  private readonly idleWaiters = new Set<() => void>()
  private closed = false
  private readonly abort = new AbortController()
  private readonly backoffMs: number
  /** Chats handed out, taken and discarded so far (for logs and tests). */
  readonly counts = { hits: 0, misses: 0, created: 0, discarded: 0, failed: 0 }

  constructor (private readonly o: ReadyChatsOptions) {
    this.demand = new Demand(o.demandWindowMs ?? 5 * 60_000, o.maxKinds ?? 8, o.now)
    this.queue = new CreationQueue<Job>(Math.max(1, o.concurrency ?? 4), (job) => this.createOne(job), () => { this.pump() })
    this.backoffMs = o.failureBackoffMs ?? 30_000
    this.gate = new RefillGate<Job>(o.refillDeferMaxMs ?? 1000, (all, jobs) => {
      if (all) this.refill()
      else for (const j of jobs) this.schedule(j)
      this.pump()
    })
  }

  get enabled (): boolean {
    return this.o.perIdentity > 0 && !this.closed
  }

  /**
   * A ready chat of `identity` for (model, chat type), or undefined (the caller creates one).
   * Notes the demand and refills in the background either way. Never throws.
   */
  async take (identity: string, model: string, chatType: ChatType): Promise<string | undefined> {
    if (!this.enabled || !WARM_CHAT_TYPES.has(chatType)) return undefined
    const fresh = this.demand.note(model, chatType)
    const key = stockKey(identity, model, chatType)
    let chat: ReadyChat | undefined
    try {
      for (;;) {
        chat = await this.o.stock.take(key)
        if (chat === undefined || !this.tooOld(chat)) break
        this.drop(chat)
      }
    } catch (err) {
      this.o.onError('take', err)
      chat = undefined
    }
    if (chat) this.counts.hits++
    else this.counts.misses++
    // A kind newly in demand is warmed for every usable identity, otherwise the taker's key is topped
    // up: once the chats handed out have started (their requests' first frames go first).
    this.gate.ask(key, fresh ? undefined : { key, identity, model, chatType }, chat?.chatId)
    return chat?.chatId
  }

  /** Chats handed out by `take` whose completion has not started yet (they hold refills back). */
  get unstarted (): number {
    return this.gate.pending
  }

  /** A chat handed out by `take` started its completion (or failed before): refills held back for it may run. */
  started (chatId: string): void {
    this.gate.started(chatId)
  }

  /** Top up every usable identity's stock of every kind in demand (the background tick). */
  refill (): void {
    if (!this.enabled) return
    const kinds = this.demand.active()
    for (const identity of this.o.usable()) {
      for (const k of kinds) this.schedule({ key: stockKey(identity, k.model, k.chatType), identity, ...k })
    }
  }

  /** Discard ready chats that are too old, of identities no longer usable, or of kinds no longer in demand. */
  async prune (): Promise<void> {
    if (this.closed) return
    // Chats taken from a shared stock by a take that timed out and nobody acknowledged: delete them.
    try {
      for (const chat of await this.o.stock.orphans?.() ?? []) this.drop(chat)
    } catch (err) {
      this.o.onError('prune', err)
    }
    const usable = new Set(this.o.usable())
    for (const [key, job] of this.keys) {
      try {
        if (!usable.has(job.identity) || !this.demand.has(job.model, job.chatType)) {
          for (const { chat } of await this.o.stock.drain(key)) this.drop(chat)
          this.keys.delete(key)
          continue
        }
        // The oldest come first: take until a fresh one, which goes back.
        for (;;) {
          const chat = await this.o.stock.take(key)
          if (chat === undefined) break
          if (this.tooOld(chat)) {
            this.drop(chat)
            continue
          }
          await this.o.stock.add(key, chat)
          break
        }
      } catch (err) {
        this.o.onError('prune', err)
      }
    }
  }

  /** Resolves when no creation is queued or running. */
  idle (): Promise<void> {
    if (this.quiet()) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.add(resolve))
  }

  /**
   * Stop: no more creations (running ones are aborted). With `deleteStock` (a single instance, or
   * the last one), every ready chat is taken out of the stock and deleted. Returns how many.
   */
  async close (deleteStock: boolean): Promise<number> {
    this.closed = true
    this.gate.close()
    this.abort.abort()
    this.pump()
    await this.idle()
    let n = 0
    try {
      // A shared stock stays for the other replicas, except its local part nobody else can reach.
      const gone = deleteStock ? await this.o.stock.drain() : await this.o.stock.drainLocal?.() ?? []
      for (const { chat } of gone) {
        this.drop(chat)
        n++
      }
    } catch (err) {
      this.o.onError('close', err)
    }
    return n
  }

  private quiet (): boolean {
    return this.queue.empty && this.counting.size === 0 && !this.gate.waiting
  }

  private tooOld (chat: ReadyChat): boolean {
    return chat.createdAt < this.o.now() - this.o.maxAgeMs
  }

  private drop (chat: ReadyChat): void {
    this.counts.discarded++
    this.o.discard(chat.chatId, chat.identity)
  }

  /** Queue the creations that bring `job.key` up to the target. */
  private schedule (job: Job): void {
    // A take by a trial (or fallback) lease must not warm an identity that is not ready.
    if (!this.o.usable().includes(job.identity)) return
    const failed = this.failedAt.get(job.key)
    if (failed !== undefined && failed > this.o.now() - this.backoffMs) return
    this.keys.set(job.key, job)
    // One count per key at a time; a take meanwhile asks for another once it is done.
    if (this.counting.has(job.key)) {
      this.recount.add(job.key)
      return
    }
    this.counting.add(job.key)
    this.o.stock.count(job.key).then((have) => {
      const need = this.o.perIdentity - have - this.queue.count(job.key)
      for (let i = 0; i < need && !this.closed; i++) this.queue.push(job)
    }, (err: unknown) => {
      this.o.onError('count', err)
    }).finally(() => {
      this.counting.delete(job.key)
      this.pump()
      if (this.recount.delete(job.key) && !this.closed) this.schedule(job)
    })
  }

  private pump (): void {
    if (this.closed) this.queue.drop()
    this.queue.pump()
    if (this.quiet()) {
      for (const w of this.idleWaiters) w()
      this.idleWaiters.clear()
    }
  }

  private async createOne (job: Job): Promise<void> {
    let chatId: string
    try {
      chatId = await this.o.create(job.identity, job.model, job.chatType, this.abort.signal)
    } catch (err) {
      if (this.closed) return
      this.counts.failed++
      this.failedAt.set(job.key, this.o.now())
      // The rest of this key's queue waits for the backoff too.
      this.queue.drop(job.key)
      this.o.onError(`create ${job.model}/${job.chatType}`, err)
      return
    }
    this.counts.created++
    const chat: ReadyChat = { chatId, identity: job.identity, createdAt: this.o.now() }
    // Created while closing, or for an identity that stopped being usable meanwhile: not kept.
    if (this.closed || !this.o.usable().includes(job.identity)) {
      this.drop(chat)
      return
    }
    try {
      await this.o.stock.add(job.key, chat)
      this.failedAt.delete(job.key)
    } catch (err) {
      this.o.onError('add', err)
      this.drop(chat)
    }
  }
}
