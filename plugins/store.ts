import fp from 'fastify-plugin'
import { DEFAULT_POLICY } from '../src/health.js'
import { MemoryStore, type QwenStore } from '../src/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Cross-request state (identity health, conversations), defined by operations; in memory by default. */
    qwenStore: QwenStore
    /** Where the store lives now (`memory`; the shared store adds `redis` and `degraded-local`) and this replica's name. */
    qwenStoreInfo: { mode: () => StoreMode; replicaId: string | undefined }
  }
}

export type StoreMode = 'memory' | 'redis' | 'degraded-local'

/** Longest wait between two sweeps of expired conversations. */
const MAX_SWEEP_MS = 60_000

export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const store = new MemoryStore({ ...DEFAULT_POLICY, ...cfg.poolPolicy }, {
    ttlMs: cfg.conversationTtlMs, maxEntries: cfg.conversationMaxEntries, maxBytes: cfg.conversationMaxBytes,
  })
  fastify.decorate('qwenStore', store)
  fastify.decorate('qwenStoreInfo', { mode: (): StoreMode => 'memory', replicaId: cfg.replicaId })
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
  })
}, { name: 'qwen-store', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events'] })
