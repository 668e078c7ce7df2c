import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { readiness } from '../src/pool-view.js'

const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  mode: Type.Union([Type.Literal('server'), Type.Literal('client')]),
  /** Server mode: identities that can serve now. */
  available: Type.Optional(Type.Integer()),
  reason: Type.Optional(Type.String()),
  /** Where shared state lives now: `memory`, `redis`, or `degraded-local` (Redis unreachable: still serving, from this replica's state). */
  store: Type.Union([Type.Literal('memory'), Type.Literal('redis'), Type.Literal('degraded-local')]),
  /** This replica's name (`REPLICA_ID`), when set. */
  replica: Type.Optional(Type.String()),
})

/**
 * `GET /ready` (public): 200 when a completion could be served now (server mode: at least one
 * identity can serve; client mode: always, callers bring their own accounts), 503 with the reason
 * (and `retry-after` when an identity's cooldown says when) otherwise, and 503 while the app drains
 * (so a load balancer stops sending traffic). `/health` stays the liveness answer.
 */
const ready: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  fastify.get('/ready', {
    config: { qwenAuth: 'public', qwenDuringDrain: true },
    schema: { description: 'Readiness: 200 when a completion can be served now, 503 with the reason otherwise', response: { 200: ReadySchema, 503: ReadySchema } },
  }, async (_request, reply) => {
    const info = fastify.qwenStoreInfo
    const where = { store: info.mode(), ...(info.replicaId !== undefined ? { replica: info.replicaId } : {}) }
    if (fastify.qwenLifecycle.draining) {
      reply.header('retry-after', '1')
      return reply.code(503).send({ status: 'not_ready' as const, mode: cfg.serverMode ? 'server' as const : 'client' as const, reason: 'the gateway is shutting down', ...where })
    }
    if (!cfg.serverMode) return { status: 'ready' as const, mode: 'client' as const, ...where }
    const r = readiness(fastify.qwenPool, cfg.now())
    if (r.ready) return { status: 'ready' as const, mode: 'server' as const, available: r.available, ...where }
    if (r.retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))))
    return reply.code(503).send({ status: 'not_ready' as const, mode: 'server' as const, available: 0, reason: r.reason, ...where })
  })
}

export default ready
