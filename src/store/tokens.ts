/**
 * Tokens shared between replicas (SCALE-OUT §A3.5 "single-flight refresh"): each identity's token
 * is kept in the shared store only sealed (`STATE_SECRET`, bound to the identity id), with a
 * refresh lease (`SET NX PX`) so that one replica signs in while the others wait for its token.
 * The write is accepted only from the lease holder and only when not older than what is stored,
 * so a lease that ran out costs at most one extra sign-in, never a stale token.
 */
import type { Breaker } from './breaker.js'
import type { Keys } from './redis/keys.js'
import type { ScriptClient } from './redis/scripts.js'

export interface StoredToken { sealed: string; exp: number; ver: number }

export interface SharedTokens {
  get: (id: string) => Promise<StoredToken | undefined>
  /** Take the refresh lease of `id` for `owner`; false while another replica holds it. */
  lease: (id: string, owner: string, ttlMs: number) => Promise<boolean>
  /** Store a new token (and give the lease back). */
  put: (id: string, owner: string, sealed: string, exp: number) => Promise<'ok' | 'lease_lost' | 'not_newer'>
  release: (id: string, owner: string) => Promise<void>
}

/** While Redis is unreachable: no shared token, every lease granted (the in-process single flight remains). */
export class RedisTokens implements SharedTokens {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker) {}

  async get (id: string): Promise<StoredToken | undefined> {
    return await this.breaker.run(async () => {
      const h = await this.c.redis.hgetall(this.keys.token(id))
      if (!h.sealed) return undefined
      return { sealed: h.sealed, exp: Number(h.exp ?? 0), ver: Number(h.ver ?? 0) }
    }, () => undefined)
  }

  async lease (id: string, owner: string, ttlMs: number): Promise<boolean> {
    return await this.breaker.run(async () => await this.c.redis.set(this.keys.tokenLease(id), owner, 'PX', ttlMs, 'NX') === 'OK', () => true)
  }

  async put (id: string, owner: string, sealed: string, exp: number): Promise<'ok' | 'lease_lost' | 'not_newer'> {
    return await this.breaker.run(async () => {
      return await this.c.run('qgTokenPut', this.keys.tokenLease(id), this.keys.token(id), owner, sealed, exp) as 'ok' | 'lease_lost' | 'not_newer'
    }, () => 'ok' as const)
  }

  async release (id: string, owner: string): Promise<void> {
    await this.breaker.run(async () => { await this.c.run('qgRelease', this.keys.tokenLease(id), owner) }, () => undefined)
  }
}

/** Request counters per key and fixed window, shared between replicas (per-key rpm limits). */
export interface SharedCounters {
  /** Count one hit on `key`; undefined when the shared side is unreachable (the caller counts locally). */
  hit: (key: string, windowMs: number) => Promise<{ current: number; ttl: number } | undefined>
}

export class RedisCounters implements SharedCounters {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker) {}

  async hit (key: string, windowMs: number): Promise<{ current: number; ttl: number } | undefined> {
    return await this.breaker.run(async () => {
      const [current, ttl] = await this.c.run('qgHit', this.keys.rateLimit + key, windowMs) as [number, number]
      return { current: Number(current), ttl: Number(ttl) }
    }, () => undefined)
  }
}

/** Short-lived values shared between replicas (the upload cache). */
export class RedisValues {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker) {}

  async get (key: string): Promise<string | undefined> {
    return await this.breaker.run(async () => await this.c.redis.get(this.keys.upload(key)) ?? undefined, () => undefined)
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    await this.breaker.run(async () => { await this.c.redis.set(this.keys.upload(key), value, 'PX', ttlMs) }, () => undefined)
  }
}
