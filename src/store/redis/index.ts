/**
 * `RedisStore`: every part of `QwenStore` shared through Redis/Valkey, each wrapped by one breaker
 * that falls back to the in-memory parts (SCALE-OUT §A3.7): Redis down or hung never blocks
 * start-up or a request; `mode()` says `degraded-local` meanwhile. On recovery (and whenever Redis
 * turns out to have lost its data) what was learned locally is written back, then the mirror is
 * re-read. The only module besides `connection.ts` that talks to ioredis.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { MemoryAccountStore } from '../../admin/accounts.js'
import { MemoryRequestLog } from '../../admin/request-log.js'
import { MemoryConversationStore, type ConversationLimits } from '../../conversations/store.js'
import type { PoolPolicy } from '../../health.js'
import { MemoryReadyChatStock } from '../../ready/stock.js'
import { MemoryHealthStore, type QwenStore } from '../../store.js'
import { Breaker } from '../breaker.js'
import { RedisConversationStore } from './conversations.js'
import { RedisHealthStore } from './health.js'
import { Keys } from './keys.js'
import { RedisAccountStore } from './accounts.js'
import { RedisReadyChatStock } from './ready-stock.js'
import { RedisRequestLog } from './request-log.js'
import { withScripts } from './scripts.js'
import { RedisVideoJobs } from './video-jobs.js'
import { RedisCounters, RedisTokens, RedisValues } from '../tokens.js'

export interface RedisStoreOptions {
  redis: Redis
  /** Whether `close()` quits `redis` (false for the embedder's own client). */
  ownsClient: boolean
  namespace: string
  replicaId: string
  policy: PoolPolicy
  conversations: ConversationLimits
  /** Re-read the shared pool state (and notice a Redis that lost its data) this often. */
  resyncMs: number
  clock?: 'redis' | 'caller'
  /** The clock conversations expire by (the gateway's `now`). */
  now?: () => number
  /** A trial not reported back frees its identity after this long. */
  probeTtlMs?: number
  /** A ready chat taken and never acknowledged is an orphan (to delete upstream) after this long (default: `orphanAge`). */
  readyOrphanAgeMs?: number
  /** How long a ready chat's acknowledgement waits for the next take to ride on. */
  readyAckDelayMs?: number
  log?: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void }
}

export type StoreMode = 'memory' | 'redis' | 'degraded-local'

/**
 * When a ready chat taken and never acknowledged counts as lost: not before a conversation started
 * in it could have ended. Its taker may be cut off from Redis (then it cannot acknowledge) while it
 * goes on in that chat; an orphan missed costs one idle chat, one deleted too early a continuation.
 */
export function orphanAge (conversationTtlMs: number): number {
  return Math.max(5 * 60_000, conversationTtlMs)
}

export class RedisStore implements QwenStore {
  readonly identities: RedisHealthStore
  readonly conversations: RedisConversationStore
  readonly readyChats: RedisReadyChatStock
  readonly requests: RedisRequestLog
  readonly accounts: RedisAccountStore
  readonly tokens: RedisTokens
  readonly counters: RedisCounters
  readonly uploads: RedisValues
  readonly videoJobs: RedisVideoJobs
  readonly keys: Keys
  readonly breaker: Breaker
  private readonly sub: Redis
  /** On the main client (maybe the embedder's): removed on close. */
  private readonly onReady = (): void => { this.breaker.poke() }
  private readonly timer: NodeJS.Timeout
  private readonly modeListeners = new Set<(mode: StoreMode) => void>()
  /** Redis's clock minus this replica's, as last measured (`TIME`). */
  private clockOffsetMs = 0

  constructor (private readonly o: RedisStoreOptions) {
    const c = withScripts(o.redis)
    this.keys = new Keys(o.namespace)
    this.breaker = new Breaker({
      ping: async () => await o.redis.ping(),
      recover: async () => { await this.recover(false) },
      probeMs: Math.min(1000, o.resyncMs),
      onChange: (open, err) => {
        if (open) o.log?.warn({ err: err?.message }, 'shared store unreachable: serving from local state (degraded-local)')
        else o.log?.info({}, 'shared store reachable: state shared again')
        for (const fn of this.modeListeners) fn(this.mode())
      },
    })
    // Stamps made here while Redis is away must compare with those Redis's clock made: this
    // replica's clock, moved by how far it was from Redis's when last seen.
    const now = o.now ?? Date.now
    const local = new MemoryHealthStore(o.policy, o.clock === 'caller' ? now : () => now() + this.clockOffsetMs)
    this.identities = new RedisHealthStore(c, this.keys, this.breaker, local, o.policy, {
      owner: `${o.replicaId}#${randomUUID()}`, clock: o.clock ?? 'redis', probeTtlMs: o.probeTtlMs ?? 5 * 60_000,
      onError: (err) => { o.log?.warn({ err: err.message }, 'shared store: identity health not written') },
    })
    this.conversations = new RedisConversationStore(c, this.keys, this.breaker, new MemoryConversationStore(o.conversations), o.conversations)
    this.readyChats = new RedisReadyChatStock(c, this.keys, this.breaker, new MemoryReadyChatStock(), {
      ackDelayMs: o.readyAckDelayMs ?? 100, orphanAgeMs: o.readyOrphanAgeMs ?? orphanAge(o.conversations.ttlMs), now: o.clock === 'caller' ? o.now : undefined,
    })
    this.requests = new RedisRequestLog(c, this.keys, this.breaker, new MemoryRequestLog())
    this.accounts = new RedisAccountStore(c, this.keys, this.breaker, new MemoryAccountStore())
    this.tokens = new RedisTokens(c, this.keys, this.breaker)
    this.counters = new RedisCounters(c, this.keys, this.breaker)
    this.uploads = new RedisValues(c, this.keys, this.breaker)
    this.videoJobs = new RedisVideoJobs(c, this.keys, this.breaker)

    // Pub/sub needs a connection of its own; it is ours, whoever owns the main client.
    this.sub = o.redis.duplicate({ lazyConnect: true })
    this.sub.on('error', () => {})
    this.sub.on('message', (_channel: string, message: string) => { this.identities.onMessage(message) })
    this.sub.on('ready', () => {
      this.sub.subscribe(this.keys.events).catch(() => {})
      // Messages sent while it was away are lost: re-read (the breaker's probe does it, or the tick).
      this.breaker.poke()
    })
    o.redis.on('ready', this.onReady)
    this.sub.connect().catch(() => {})
    if (o.redis.status === 'wait') o.redis.connect().catch(() => {})
    this.breaker.start()
    this.timer = setInterval(() => { void this.tick() }, o.resyncMs)
    this.timer.unref()
  }

  mode (): StoreMode {
    return this.breaker.open ? 'degraded-local' : 'redis'
  }

  /** Resolves once the store is shared, or after `ms` (Redis away: start-up goes on, degraded-local). */
  async whenShared (ms: number): Promise<void> {
    if (!this.breaker.open) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      const off = this.onMode((m) => { if (m === 'redis') done() })
      function done (): void {
        clearTimeout(timer)
        off()
        resolve()
      }
    })
  }

  /** Called with the new mode after every change. */
  onMode (fn: (mode: StoreMode) => void): () => void {
    this.modeListeners.add(fn)
    return () => { this.modeListeners.delete(fn) }
  }

  /** Write back what was learned locally (everything when Redis lost its data), then re-read. */
  private async recover (checkedAlive: boolean): Promise<void> {
    await this.measureClock()
    const fresh = checkedAlive || await this.o.redis.set(this.keys.alive, this.o.replicaId, 'NX') === 'OK'
    await this.identities.recover(fresh)
    await this.readyChats.flushAcks(true)
    await this.accounts.recover()
    await this.conversations.recover(this.o.now?.() ?? Date.now())
  }

  /** Periodic: a Redis restarted empty is noticed by the missing marker, the mirror re-read. */
  private async tick (): Promise<void> {
    if (this.breaker.open) return
    try {
      if (await this.o.redis.set(this.keys.alive, this.o.replicaId, 'NX') === 'OK') {
        this.o.log?.warn({}, 'shared store lost its data (restarted?): writing back this replica\'s state')
        await this.recover(true)
      } else {
        await this.identities.resync()
      }
      await this.measureClock()
    } catch (err) {
      this.breaker.fail(err)
    }
  }

  /** How far this replica's clock is from Redis's (half the round trip is the error). */
  private async measureClock (): Promise<void> {
    const now = this.o.now ?? Date.now
    const before = now()
    const [sec, usec] = await this.o.redis.time()
    const after = now()
    this.clockOffsetMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - Math.round((before + after) / 2)
  }

  /** Wait for the writes in flight. */
  async flush (): Promise<void> {
    await this.identities.flush()
    await this.requests.flush()
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    this.breaker.close()
    await this.identities.flush()
    await this.requests.close()
    await this.readyChats.close()
    this.conversations.close()
    this.sub.disconnect()
    this.o.redis.off('ready', this.onReady)
    if (this.o.ownsClient) this.o.redis.disconnect()
  }
}
