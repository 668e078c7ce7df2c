/**
 * The runtime accounts in Redis (a HASH of sealed blobs). Falls back to its memory counterpart
 * while the breaker is open; what was added meanwhile is written back on recovery.
 */
import type { AccountStore, MemoryAccountStore, SealedAccount } from '../../admin/accounts.js'
import type { Breaker } from '../breaker.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

export class RedisAccountStore implements AccountStore {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker, private readonly local: MemoryAccountStore) {}

  async list (): Promise<SealedAccount[]> {
    return await this.breaker.run(async () => {
      const all = await this.c.redis.hvals(this.keys.accounts)
      return all.map((raw) => JSON.parse(raw) as SealedAccount)
    }, async () => await this.local.list())
  }

  async put (a: SealedAccount): Promise<void> {
    // Also locally: the accounts added during an outage are written back on recovery.
    await this.local.put(a)
    await this.breaker.run(async () => { await this.c.redis.hset(this.keys.accounts, a.id, JSON.stringify(a)) }, () => undefined)
  }

  async delete (id: string): Promise<boolean> {
    const local = await this.local.delete(id)
    return await this.breaker.run(async () => await this.c.redis.hdel(this.keys.accounts, id) === 1, () => local)
  }

  /** Write back what was added locally (recovery after an outage, or Redis lost its data). */
  async recover (): Promise<void> {
    for (const a of await this.local.list()) await this.c.redis.hsetnx(this.keys.accounts, a.id, JSON.stringify(a))
  }
}
