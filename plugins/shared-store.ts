import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { DEFAULT_POLICY } from '../src/health.js'
import { OptionsError } from '../src/options.js'
import { MemoryStore, type QwenStore } from '../src/store.js'
import { createRedis, StoreUnavailableError } from '../src/store/redis/connection.js'
import { RedisStore, type StoreMode } from '../src/store/redis/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Cross-request state (identity health, conversations, …), defined by operations; in memory, or shared in Redis. */
    qwenStore: QwenStore
    /** Where the store lives now (`memory`, `redis`, or `degraded-local` while Redis is unreachable) and this replica's name. */
    qwenStoreInfo: { mode: () => StoreMode; replicaId: string | undefined; onMode: (fn: (mode: StoreMode) => void) => () => void }
  }
}

export type { StoreMode }

/** How long start-up waits for Redis at most before it goes on in degraded-local. */
const STARTUP_WAIT_MS = 750

/** How long start-up waits for Redis with `redisRequired` before it gives up. */
export const REQUIRED_WAIT_MS = 5_000

/** Longest wait between two sweeps of expired conversations. */
const MAX_SWEEP_MS = 60_000

/**
 * `qwenStore`: a `MemoryStore` by default (one process), a `RedisStore` when `redisUrl` (or the
 * embedder's own ioredis client, `redis`) is given. Redis never blocks start-up: the store starts
 * in `degraded-local` and shares state as soon as Redis answers. A shared store needs
 * `stateSecret` (tokens and accounts only ever go there sealed).
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const policy = { ...DEFAULT_POLICY, ...cfg.poolPolicy }
  const limits = { ttlMs: cfg.conversationTtlMs, maxEntries: cfg.conversationMaxEntries, maxBytes: cfg.conversationMaxBytes }
  const external = cfg.redis as Redis | undefined
  let store: QwenStore
  let shared: RedisStore | undefined
  if (external ?? cfg.redisUrl) {
    if (!cfg.stateSecret) throw new OptionsError('stateSecret', 'a shared store (REDIS_URL) needs STATE_SECRET, so that tokens and accounts go to Redis sealed: set the same STATE_SECRET on every replica')
    const replicaId = cfg.replicaId ?? 'gateway'
    shared = new RedisStore({
      redis: external ?? createRedis(cfg.redisUrl!, replicaId, cfg.redisCommandTimeoutMs),
      ownsClient: external === undefined,
      namespace: cfg.redisNamespace,
      replicaId,
      policy,
      conversations: limits,
      resyncMs: cfg.storeResyncMs,
      now: cfg.now,
      log: fastify.log,
    })
    store = shared
    // A short, bounded wait, so that start-up token fetches are already shared; never longer.
    // With `redisRequired`, a longer one, and no start without Redis.
    await shared.whenShared(cfg.redisRequired ? REQUIRED_WAIT_MS : STARTUP_WAIT_MS)
    if (cfg.redisRequired && shared.mode() !== 'redis') {
      const lastError = shared.breaker.lastError
      await shared.close()
      throw new StoreUnavailableError(REQUIRED_WAIT_MS, lastError)
    }
  } else {
    store = new MemoryStore(policy, limits)
  }
  const modeListeners = new Set<(mode: StoreMode) => void>()
  fastify.decorate('qwenStore', store)
  fastify.decorate('qwenStoreInfo', {
    mode: (): StoreMode => shared?.mode() ?? 'memory',
    replicaId: cfg.replicaId,
    onMode: (fn: (mode: StoreMode) => void) => shared?.onMode(fn) ?? (() => { modeListeners.delete(fn) }),
  })
  const unsubscribe = store.conversations.subscribe(({ ref, reason }) => {
    fastify.qwenEvents.emit('conversation.expired', { identity: ref.identity, chatId: ref.chatId, reason })
  })
  // Expired conversations are announced (conversation.expired) even when nobody asks for them again.
  const sweep = setInterval(() => {
    store.conversations.sweep(cfg.now()).catch((err: unknown) => { fastify.log.warn({ err }, 'conversation sweep failed') })
  }, Math.min(cfg.conversationTtlMs, MAX_SWEEP_MS))
  sweep.unref()
  fastify.addHook('onClose', async () => {
    clearInterval(sweep)
    unsubscribe()
    await shared?.close()
  })
}, { name: 'qwen-store', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events'] })
