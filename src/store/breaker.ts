/**
 * The breaker around the shared store: one failed (or timed-out) Redis command opens it, and while
 * it is open every operation runs on the local (memory) side, so a dead or hung Redis costs one
 * command timeout, not one per request. A probe (`PING` every `probeMs`) closes it again after the
 * recovery work (writing back what was learned locally) has run.
 */

export interface BreakerOptions {
  /** Checks that Redis answers (a PING); rejects otherwise. */
  ping: () => Promise<unknown>
  /** Runs once Redis answers again, before the breaker closes (write back local state, resync). */
  recover: () => Promise<void>
  probeMs: number
  onChange?: (open: boolean, err?: Error) => void
}

export class Breaker {
  private isOpen = true
  private timer: NodeJS.Timeout | undefined
  private probing = false
  private closed = false
  lastError: string | undefined

  constructor (private readonly o: BreakerOptions) {}

  /** True while operations go to the local side. */
  get open (): boolean { return this.isOpen }

  /** Start probing (the store starts open: nothing is shared until Redis answered once). */
  start (): void {
    this.schedule(0)
  }

  /** A command failed: open, and probe until Redis answers. */
  fail (err: unknown): void {
    this.lastError = (err as Error)?.message ?? String(err)
    if (this.closed) return
    if (!this.isOpen) {
      this.isOpen = true
      this.o.onChange?.(true, err as Error)
    }
    this.schedule(this.o.probeMs)
  }

  /** Run `shared` unless the breaker is open; on its failure (or when open) run `local`. */
  async run<T> (shared: () => Promise<T>, local: () => T | Promise<T>): Promise<T> {
    if (this.isOpen) return await local()
    try {
      return await shared()
    } catch (err) {
      this.fail(err)
      return await local()
    }
  }

  /** Probe now (a reconnect was seen) instead of at the next tick. */
  poke (): void {
    if (!this.isOpen || this.probing) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.schedule(0)
  }

  private schedule (ms: number): void {
    if (this.closed || this.timer || this.probing) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.probe()
    }, ms)
    this.timer.unref()
  }

  private async probe (): Promise<void> {
    if (this.closed || !this.isOpen) return
    this.probing = true
    try {
      await this.o.ping()
      await this.o.recover()
      this.probing = false
      if (this.closed) return
      this.isOpen = false
      this.lastError = undefined
      this.o.onChange?.(false)
    } catch (err) {
      this.probing = false
      this.lastError = (err as Error)?.message ?? String(err)
      this.schedule(this.o.probeMs)
    }
  }

  close (): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }
}
