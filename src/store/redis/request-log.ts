/**
 * The recent-request log in Redis (a capped LIST, newest first), for the dashboard of every replica.
 * Off the request path: records are batched and written every `flushMs` in one MULTI (one round
 * trip for the batch, none per request); a read flushes this replica's batch first, and `close()`
 * flushes what is left. Falls back to its memory counterpart while the breaker is open (a batch
 * whose write failed goes there too).
 */
import type { MemoryRequestLog, RequestLog, RequestRecord } from '../../admin/request-log.js'
import type { Breaker } from '../breaker.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

/** How long a record waits for its batch at most. */
export const REQUEST_LOG_FLUSH_MS = 250

export class RedisRequestLog implements RequestLog {
  private batch: RequestRecord[] = []
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor (
    private readonly c: ScriptClient,
    private readonly keys: Keys,
    private readonly breaker: Breaker,
    private readonly local: MemoryRequestLog,
    private readonly max = 200,
    private readonly flushMs = REQUEST_LOG_FLUSH_MS,
  ) {}

  async add (r: RequestRecord): Promise<void> {
    if (this.breaker.open || this.closed) {
      await this.local.add(r)
      return
    }
    this.batch.push(r)
    // Only the newest `max` can ever be read back.
    if (this.batch.length > this.max) this.batch.shift()
    if (this.timer === undefined) {
      this.timer = setTimeout(() => { void this.flush() }, this.flushMs)
      this.timer.unref()
    }
  }

  /** Write the waiting records now (one round trip); never throws (a failed write keeps them locally). */
  async flush (): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.batch
    if (batch.length === 0) return
    this.batch = []
    await this.breaker.run(async () => {
      const key = this.keys.requests
      // LPUSH of several values pushes them in order: the last (newest) ends up first.
      await this.c.redis.multi().lpush(key, ...batch.map((r) => JSON.stringify(r))).ltrim(key, 0, this.max - 1).exec()
    }, async () => { for (const r of batch) await this.local.add(r) })
  }

  async recent (limit: number): Promise<RequestRecord[]> {
    await this.flush()
    return await this.breaker.run(async () => {
      if (limit <= 0) return []
      const list = await this.c.redis.lrange(this.keys.requests, 0, limit - 1)
      return list.map((raw) => JSON.parse(raw) as RequestRecord)
    }, async () => await this.local.recent(limit))
  }

  /** Flush what is left; later records stay local. */
  async close (): Promise<void> {
    this.closed = true
    await this.flush()
  }
}
