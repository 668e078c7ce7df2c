/**
 * When the refills that takes ask for may run (issue #12, time to first token under a burst).
 *
 * A take asks for a refill at once, but running it at once puts its upstream calls (`chats/new`,
 * their answers, the stock writes) on the event loop in the middle of the burst that took the
 * chats, ahead of those requests' completions and first frames. So the refills wait until every
 * chat handed out has started (its completion's first frames came, or it failed), then run together
 * on the next turn of the event loop; at most `maxDeferMs` after the first one was asked for, so
 * that a steady stream of takes still refills (in batches, about once per `maxDeferMs`).
 * Framework-free; `keeper.ts` owns one.
 */

export class RefillGate<J> {
  /** The refills asked for, one per stock key (a later ask for the same key replaces it). */
  private readonly jobs = new Map<string, J>()
  /** A kind newly in demand: every usable identity is to be warmed. */
  private all = false
  /** Chats handed out whose completion has not started yet (forgotten when the bound fires). */
  private readonly unstarted = new Set<string>()
  private immediate: NodeJS.Immediate | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false

  /** `run(all, jobs)` gets what was asked for since the last run. */
  constructor (private readonly maxDeferMs: number, private readonly run: (all: boolean, jobs: J[]) => void) {}

  /** Whether refills are waiting to run (asked for, not run yet). */
  get waiting (): boolean {
    return this.immediate !== undefined || this.timer !== undefined
  }

  /** How many chats handed out have not started yet (for tests and logs). */
  get pending (): number {
    return this.unstarted.size
  }

  /**
   * A take asks for a refill: of `key` (`job`), or of everything (`job` undefined). `chatId`: the
   * chat it handed out, if any, which holds the refills back until it has started.
   */
  ask (key: string, job: J | undefined, chatId: string | undefined): void {
    if (this.closed) return
    if (job === undefined) this.all = true
    else this.jobs.set(key, job)
    if (chatId !== undefined) this.unstarted.add(chatId)
    this.arm()
  }

  /** A chat handed out started its completion (or failed before): the refills may go once none is left. */
  started (chatId: string): void {
    if (this.unstarted.delete(chatId) && this.unstarted.size === 0) this.arm()
  }

  /** Drop what is waiting (closing). */
  close (): void {
    this.closed = true
    this.clear()
    this.jobs.clear()
    this.unstarted.clear()
  }

  /** Called only with something asked for (`jobs`/`all` and `unstarted` are cleared together). */
  private arm (): void {
    if (this.unstarted.size > 0) {
      // Wait for the chats handed out, not for the next turn; bounded from the first ask.
      if (this.immediate !== undefined) {
        clearImmediate(this.immediate)
        this.immediate = undefined
      }
      this.timer ??= setTimeout(() => { this.flush() }, this.maxDeferMs)
      return
    }
    // Nothing handed out is pending: on the next turn, after the request that asked sent its completion.
    this.immediate ??= setImmediate(() => { this.flush() })
  }

  private clear (): void {
    clearImmediate(this.immediate)
    clearTimeout(this.timer)
    this.immediate = undefined
    this.timer = undefined
  }

  private flush (): void {
    this.clear()
    // Past the bound, chats still not started are forgotten: they no longer hold anything back.
    this.unstarted.clear()
    const all = this.all
    const jobs = [...this.jobs.values()]
    this.all = false
    this.jobs.clear()
    this.run(all, jobs)
  }
}
