/**
 * The background deleter: a queue of upstream chats to delete, worked off with a concurrency limit
 * and a few retries (delays doubling), never on a request's path. `flush(ms)` waits for the queue
 * (bounded), `close()` stops it: timers cleared, deletions in progress aborted.
 */

export type DeletionResult = 'deleted' | 'gone' | 'failed'

export interface DeletionReport {
  chatId: string
  identity: string
  result: DeletionResult
  /** Tries made (1 when the first one settled it). */
  attempts: number
  /** The last error's message when `failed`. */
  error?: string
}

export interface DeleterOptions {
  /** Delete one chat as `identity`: true deleted, false already gone; throws on failure. */
  remove: (chatId: string, identity: string, signal: AbortSignal) => Promise<boolean>
  /** Every deletion's outcome (logs, metrics). */
  report: (r: DeletionReport) => void
  /** Deletions running at once. */
  concurrency?: number
  /** Tries per chat, the first included. */
  attempts?: number
  /** Delay before the second try; doubles after each failure. */
  retryDelayMs: number
}

interface Job { chatId: string; identity: string; tries: number }

export class ChatDeleter {
  private readonly queue: Job[] = []
  /** Chats queued, running or waiting for a retry (a chat is never deleted twice at once). */
  private readonly pending = new Set<string>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly idle = new Set<() => void>()
  private running = 0
  private closed = false
  private readonly abort = new AbortController()
  private readonly concurrency: number
  private readonly attempts: number

  constructor (private readonly o: DeleterOptions) {
    this.concurrency = o.concurrency ?? 4
    this.attempts = o.attempts ?? 3
  }

  /** Chats not yet settled (queued, running, or waiting to be tried again). */
  get size (): number {
    return this.pending.size
  }

  has (chatId: string): boolean {
    return this.pending.has(chatId)
  }

  /** Queue `chatId` for deletion as `identity` (ignored when already pending, or after close). */
  enqueue (chatId: string, identity: string): void {
    if (this.closed || this.pending.has(chatId)) return
    this.pending.add(chatId)
    this.queue.push({ chatId, identity, tries: 0 })
    this.pump()
  }

  /** Wait until nothing is pending, or `ms` has passed; true when everything settled. */
  async flush (ms: number): Promise<boolean> {
    if (this.pending.size === 0) return true
    let timer: NodeJS.Timeout | undefined
    let done: (() => void) | undefined
    const settled = await new Promise<boolean>((resolve) => {
      done = () => resolve(true)
      this.idle.add(done)
      timer = setTimeout(() => resolve(false), ms)
    })
    clearTimeout(timer)
    this.idle.delete(done!)
    return settled
  }

  /** Stop: no new work, retry timers cleared, running deletions aborted. Returns what was left undone. */
  close (): number {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.abort.abort()
    const left = this.pending.size
    this.queue.length = 0
    this.pending.clear()
    this.settle()
    return left
  }

  private pump (): void {
    while (!this.closed && this.running < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!
      this.running++
      void this.run(job).finally(() => {
        this.running--
        this.pump()
        this.settle()
      })
    }
  }

  private async run (job: Job): Promise<void> {
    job.tries++
    let error: string
    try {
      const deleted = await this.o.remove(job.chatId, job.identity, this.abort.signal)
      this.done(job, deleted ? 'deleted' : 'gone')
      return
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
    }
    if (this.closed) return
    if (job.tries >= this.attempts) {
      this.done(job, 'failed', error)
      return
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      this.queue.push(job)
      this.pump()
    }, this.o.retryDelayMs * 2 ** (job.tries - 1))
    timer.unref()
    this.timers.add(timer)
  }

  private done (job: Job, result: DeletionResult, error?: string): void {
    this.pending.delete(job.chatId)
    this.o.report({ chatId: job.chatId, identity: job.identity, result, attempts: job.tries, ...(error !== undefined ? { error } : {}) })
  }

  private settle (): void {
    if (this.pending.size > 0) return
    for (const fn of [...this.idle]) fn()
  }
}
