/**
 * The ready-chat stock in Redis: a LIST per stock, each chat handed out once across replicas. Falls
 * back to its memory counterpart while the breaker is open.
 *
 * A take is noted in Redis (the chat and the Redis time) until its taker acknowledges it: a take
 * whose command timed out here (the breaker opened, the request created its chat inline) may still
 * run in Redis later, and that chat would otherwise be held by nobody, never used and never
 * deleted. Acknowledgements ride on the next take (no extra round trip on the hot path), or go
 * alone shortly after; `orphans()` hands out what nobody acknowledged, for deletion upstream.
 */
import type { MemoryReadyChatStock, ReadyChat, ReadyChatStock } from '../../ready/stock.js'
import type { Breaker } from '../breaker.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

export interface ReadyStockOptions {
  /** How long an acknowledgement waits for a take to ride on before it goes alone. */
  ackDelayMs: number
  /** `orphans()` without an age: a take older than this and not acknowledged is an orphan. */
  orphanAgeMs: number
  /** The clock orphans are aged by: `redis` (production), or `caller` (tests pass `now`). */
  now?: () => number
}

/** At most this many orphans per call. */
const ORPHAN_BATCH = 100

export class RedisReadyChatStock implements ReadyChatStock {
  /** Chats this replica received and Redis does not know yet. */
  private readonly acks = new Set<string>()
  private ackTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor (
    private readonly c: ScriptClient,
    private readonly keys: Keys,
    private readonly breaker: Breaker,
    private readonly local: MemoryReadyChatStock,
    private readonly o: ReadyStockOptions = { ackDelayMs: 100, orphanAgeMs: 5 * 60_000 },
  ) {}

  private get takenKeys (): string[] {
    return [this.keys.readyTaken, this.keys.readyTakenData]
  }

  async take (key: string): Promise<ReadyChat | undefined> {
    const local = await this.local.take(key)
    if (local) return local
    return await this.breaker.run(async () => {
      const sent = [...this.acks]
      const raw = await this.c.run('qgTake', this.keys.ready(key), this.keys.readyIds, this.keys.readyKeys, ...this.takenKeys, key, JSON.stringify(sent)) as string | null
      for (const id of sent) this.acks.delete(id)
      if (!raw) return undefined
      const chat = JSON.parse(raw) as ReadyChat
      this.ack(chat.chatId)
      return chat
    }, () => undefined)
  }

  /** Note a received chat; it goes to Redis with the next take, or alone after `ackDelayMs`. */
  private ack (chatId: string): void {
    this.acks.add(chatId)
    if (this.ackTimer || this.closed) return
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined
      this.flushAcks().catch(() => {})
    }, this.o.ackDelayMs)
    this.ackTimer.unref()
  }

  /**
   * Send the pending acknowledgements now (kept for later when Redis fails, or while the breaker is
   * open unless `force`, which recovery uses before the breaker closes). Rejects on failure.
   */
  async flushAcks (force = false): Promise<void> {
    if (this.acks.size === 0 || (this.breaker.open && !force)) return
    const sent = [...this.acks]
    try {
      await this.c.run('qgAck', ...this.takenKeys, JSON.stringify(sent))
    } catch (err) {
      if (!force) this.breaker.fail(err)
      throw err
    }
    for (const id of sent) this.acks.delete(id)
  }

  /**
   * Chats taken longer than `olderThanMs` ago (Redis time) and never acknowledged: removed and
   * returned (each to one replica) for deletion upstream; none while the breaker is open.
   */
  async orphans (olderThanMs = this.o.orphanAgeMs): Promise<ReadyChat[]> {
    return await this.breaker.run(async () => {
      const now = this.o.now ? String(this.o.now()) : ''
      const list = await this.c.run('qgOrphans', ...this.takenKeys, this.keys.convChats, olderThanMs, ORPHAN_BATCH, now) as string[]
      return list.map((raw) => JSON.parse(raw) as ReadyChat)
    }, () => [])
  }

  /** Stop the acknowledgement timer and send what is pending (best effort). */
  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.ackTimer)
    this.ackTimer = undefined
    await this.flushAcks().catch(() => {})
  }

  async add (key: string, chat: ReadyChat): Promise<void> {
    if (this.breaker.open) {
      await this.local.add(key, chat)
      return
    }
    let failed = false
    await this.breaker.run(async () => {
      await this.c.redis.multi().rpush(this.keys.ready(key), JSON.stringify(chat)).sadd(this.keys.readyIds, chat.chatId).sadd(this.keys.readyKeys, key).exec()
    }, () => { failed = true })
    // A timed-out push may still run once Redis answers: keeping the chat locally too could hand it
    // out twice. The caller drops it (and deletes it upstream) instead.
    if (failed) throw new Error('the shared ready-chat stock did not answer: chat not stocked')
  }

  async count (key: string): Promise<number> {
    const local = await this.local.count(key)
    return local + await this.breaker.run(async () => await this.c.redis.llen(this.keys.ready(key)), () => 0)
  }

  async drain (key?: string): Promise<Array<{ key: string; chat: ReadyChat }>> {
    const out = await this.local.drain(key)
    const shared = await this.breaker.run(async () => {
      const keys = key === undefined ? await this.c.redis.smembers(this.keys.readyKeys) : [key]
      const got: Array<{ key: string; chat: ReadyChat }> = []
      for (const k of keys) {
        const [[, list]] = await this.c.redis.multi().lrange(this.keys.ready(k), 0, -1).del(this.keys.ready(k)).srem(this.keys.readyKeys, k).exec() as [[unknown, string[]]]
        for (const raw of list) {
          const chat = JSON.parse(raw) as ReadyChat
          await this.c.redis.srem(this.keys.readyIds, chat.chatId)
          got.push({ key: k, chat })
        }
      }
      return got
    }, () => [])
    return [...out, ...shared]
  }

  async drainLocal (): Promise<Array<{ key: string; chat: ReadyChat }>> {
    return await this.local.drain()
  }

  async holds (chatId: string): Promise<boolean> {
    if (await this.local.holds(chatId)) return true
    return await this.breaker.run(async () => await this.c.redis.sismember(this.keys.readyIds, chatId) === 1, () => false)
  }
}
