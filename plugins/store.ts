import fp from 'fastify-plugin'
import { DEFAULT_POLICY } from '../src/health.js'
import { MemoryStore, type QwenStore } from '../src/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Cross-request state (identity health today), defined by operations; in memory by default. */
    qwenStore: QwenStore
  }
}

export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  fastify.decorate('qwenStore', new MemoryStore({ ...DEFAULT_POLICY, ...cfg.poolPolicy }))
}, { name: 'qwen-store', fastify: '5.x', dependencies: ['qwen-config'] })
