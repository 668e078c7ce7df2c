import fp from 'fastify-plugin'
import { ModelCatalog } from '../src/models.js'
import { credentialsOf } from '../src/pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The model catalogue (upstream list cached with a TTL). */
    qwenModels: ModelCatalog
  }
}

/** The model list is fetched with the first usable identity's credentials (or none). */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const pool = fastify.qwenPool
  const tokens = fastify.qwenTokens
  fastify.decorate('qwenModels', new ModelCatalog({
    ttlMs: cfg.modelsCacheTtlMs,
    aliases: cfg.modelAliases,
    now: cfg.now,
    fetch: async (signal) => {
      // Whatever identity already has a token (the list also answers without one): requests must
      // not wait for every identity's start-up token fetch.
      const identity = pool.peek()
      return fastify.qwenUpstream.listModels(identity ? credentialsOf(identity) : {}, { proxyUrl: identity?.proxyUrl, signal })
    },
    onError: (err) => fastify.log.warn({ err: (err as Error).message }, 'upstream model list unavailable; serving the last good or built-in list'),
    onUnknownAlias: (alias, target) => fastify.log.warn({ alias, target }, `MODEL_ALIASES: "${alias}" points to "${target}", which the upstream model list does not offer; the alias is not served`),
  }))
  // Warm the cache once the tokens are there, so the first completion does not wait for the list.
  fastify.addHook('onReady', async () => { void tokens.ready().then(() => fastify.qwenModels.refresh(), () => {}) })
  // Abort a running fetch: shutdown never waits for the upstream model list.
  fastify.addHook('onClose', async () => { fastify.qwenModels.close() })
}, { name: 'qwen-models', fastify: '5.x', dependencies: ['qwen-config', 'qwen-upstream', 'qwen-identity-pool', 'qwen-token-refresher'] })
