/**
 * The recent-request log in Redis (a capped LIST, newest first), for the dashboard of every replica.
 * Falls back to its memory counterpart while the breaker is open.
 */
import type { MemoryRequestLog, RequestLog, RequestRecord } from '../../admin/request-log.js'
import type { Breaker } from '../breaker.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

export class RedisRequestLog implements RequestLog {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker, private readonly local: MemoryRequestLog, private readonly max = 200) {}

  async add (r: RequestRecord): Promise<void> {
    await this.breaker.run(async () => {
      await this.c.redis.multi().lpush(this.keys.requests, JSON.stringify(r)).ltrim(this.keys.requests, 0, this.max - 1).exec()
    }, async () => { await this.local.add(r) })
  }

  async recent (limit: number): Promise<RequestRecord[]> {
    return await this.breaker.run(async () => {
      if (limit <= 0) return []
      const list = await this.c.redis.lrange(this.keys.requests, 0, limit - 1)
      return list.map((raw) => JSON.parse(raw) as RequestRecord)
    }, async () => await this.local.recent(limit))
  }
}
