/**
 * The cap on concurrent upstream requests (`UPSTREAM_MAX_CONNECTIONS`) with a bounded wait: a
 * request that would queue longer than `UPSTREAM_QUEUE_TIMEOUT_MS` for a free slot is refused with
 * 503 `gateway_overloaded` (and `retry-after`) instead of waiting silently for a connection until
 * the first-byte timeout. The dispatcher's own connection cap is the same number, so a request
 * holding a slot never queues inside undici.
 */
import { UpstreamError } from '../errors.js'

interface Waiter {
  grant: () => void
  timer: NodeJS.Timeout
}

export class UpstreamSlots {
  private active = 0
  private readonly waiting = new Set<Waiter>()

  constructor (readonly max: number, private readonly queueTimeoutMs: number) {}

  /** Requests holding a slot (an upstream connection in use). */
  get inUse (): number { return this.active }

  /** Requests waiting for a slot. */
  get queued (): number { return this.waiting.size }

  /**
   * A slot, now or within the queue budget; the returned function gives it back (idempotent).
   * Rejects with `overloaded` after the budget, or with the signal's reason when it aborts first.
   */
  async acquire (signal?: AbortSignal | null): Promise<() => void> {
    if (this.active < this.max && this.waiting.size === 0) {
      this.active++
      return this.releaser()
    }
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(w.timer)
        this.waiting.delete(w)
        reject(signal!.reason)
      }
      const w: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        timer: setTimeout(() => {
          signal?.removeEventListener('abort', onAbort)
          this.waiting.delete(w)
          reject(new UpstreamError('overloaded', `Every upstream connection (UPSTREAM_MAX_CONNECTIONS=${this.max}) stayed busy for ${this.queueTimeoutMs} ms (UPSTREAM_QUEUE_TIMEOUT_MS); retry shortly`))
        }, this.queueTimeoutMs),
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiting.add(w)
    })
    return this.releaser()
  }

  private releaser (): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      // Hand the slot straight to the oldest waiter (the count stays), or free it.
      const next = this.waiting.values().next()
      if (!next.done) {
        const w = next.value
        this.waiting.delete(w)
        clearTimeout(w.timer)
        w.grant()
      } else {
        this.active--
      }
    }
  }
}
