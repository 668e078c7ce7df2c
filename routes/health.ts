import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { formatRemaining } from '../src/jwt.js'
import { HealthSchema } from '../src/schemas.js'
import { VERSION } from '../src/version.js'
import { identityViews, poolCounts, tokenStatus } from '../src/pool-view.js'

/** `GET /health`: always 200 while the process serves; no secret in it. */
const health: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  fastify.get('/health', { config: { qwenAuth: 'public', qwenDuringDrain: true }, schema: { response: { 200: HealthSchema } } }, async (request) => {
    const pool = fastify.qwenPool
    const token = tokenStatus(pool, cfg.now())
    const detail = fastify.qwenIsAdmin(request) ? { identities: identityViews(pool, cfg.now()), counters: { ...pool.counters } } : {}
    return {
      status: 'OK' as const,
      timestamp: new Date(cfg.now()).toISOString(),
      version: VERSION,
      config: {
        apiKeyEnabled: cfg.apiKey !== undefined,
        serverMode: cfg.serverMode,
        debugMode: cfg.debugMode,
        autoRefreshToken: cfg.autoRefreshToken,
      },
      token: { ...token, formattedTime: formatRemaining(token.remainingTime) },
      identityPool: poolCounts(pool),
      models: { source: fastify.qwenModels.source },
      ...detail,
    }
  })
}

export default health
