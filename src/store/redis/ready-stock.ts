/**
 * The ready-chat stock in Redis: a LIST per stock, each chat handed out once across replicas. Falls
 * back to its memory counterpart while the breaker is open.
 */
import type { MemoryReadyChatStock, ReadyChat, ReadyChatStock } from '../../ready/stock.js'
import type { Breaker } from '../breaker.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

export class RedisReadyChatStock implements ReadyChatStock {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker, private readonly local: MemoryReadyChatStock) {}

  async take (key: string): Promise<ReadyChat | undefined> {
    const local = await this.local.take(key)
    if (local) return local
    return await this.breaker.run(async () => {
      const raw = await this.c.run('qgTake', this.keys.ready(key), this.keys.readyIds, this.keys.readyKeys, key) as string | null
      return raw ? JSON.parse(raw) as ReadyChat : undefined
    }, () => undefined)
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
