import fp from 'fastify-plugin'
import { UpstreamError } from '../src/errors.js'
import { GatewayMetrics, UPSTREAM_KIND_BY_CODE } from '../src/metrics.js'
import { blockedCounts, poolCounts } from '../src/pool-view.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus metrics (its own registry). */
    qwenMetrics: GatewayMetrics
  }
}

const seconds = (ms: number): number => ms / 1000

/**
 * Prometheus metrics fed from the event surface (requests, completions, failovers, identity health,
 * tokens, chats) and from two hooks: `onError` sees the upstream failure a request ends with, and
 * a `preHandler` counts streamed responses until they close. `GET /metrics` is `routes/metrics.ts`.
 */
export default fp(async (fastify) => {
  const pool = fastify.qwenPool
  const m = new GatewayMetrics({
    poolCounts: () => poolCounts(pool),
    blocked: () => blockedCounts(pool),
    inProgress: () => fastify.qwenLifecycle.live.size,
    store: () => ({ mode: fastify.qwenStoreInfo.mode(), replica: fastify.qwenStoreInfo.replicaId }),
    upstream: () => ({ inUse: fastify.qwenUpstream.slots?.inUse ?? 0, queued: fastify.qwenUpstream.slots?.queued ?? 0 }),
  })
  fastify.decorate('qwenMetrics', m)
  const on = fastify.qwenEvents.on.bind(fastify.qwenEvents)

  on('request', (e) => {
    m.requests.inc({ route: e.route, method: e.method, status: String(e.status), model: e.completion?.model ?? '', key: e.key ?? '' })
  })
  on('upload', (u) => {
    m.uploads.inc({ kind: u.kind, result: u.result })
    if (u.result === 'uploaded') m.uploadBytes.inc({ kind: u.kind }, u.bytes)
  })
  on('completion', (c) => {
    const labels = { model: c.model, stream: String(c.stream) }
    if (c.ttftMs !== undefined) m.ttft.observe(labels, seconds(c.ttftMs))
    m.duration.observe(labels, seconds(c.durationMs))
    if (c.usage) {
      m.tokens.inc({ model: c.model, kind: 'prompt' }, c.usage.prompt)
      m.tokens.inc({ model: c.model, kind: 'completion' }, c.usage.completion)
      m.tokens.inc({ model: c.model, kind: 'reasoning' }, c.usage.reasoning)
    }
    // Cut after the response was committed (an error frame): the status stayed 200.
    if (c.outcome === 'error' && c.status < 400) m.upstreamErrors.inc({ kind: 'mid_stream' })
  })
  on('failover', (e) => {
    m.failovers.inc()
    m.upstreamErrors.inc({ kind: UPSTREAM_KIND_BY_CODE[e.code] ?? 'other' })
  })
  on('identity.health', (e) => {
    if (e.transition) m.transitions.inc({ to: e.transition.to })
    if (e.cooldown) m.cooldowns.inc({ kind: e.cooldown.kind })
  })
  on('token.refreshed', () => { m.tokenRefreshes.inc({ result: 'success' }) })
  on('token.failed', () => { m.tokenRefreshes.inc({ result: 'failure' }) })
  on('chat.created', () => { m.chats.inc({ event: 'created' }) })
  on('chat.deleted', () => { m.chats.inc({ event: 'deleted' }) })
  on('chat.deletion', (e) => { m.chatDeletions.inc({ result: e.result }) })

  // The failure a request ends with (failed-over attempts are counted from their events).
  fastify.addHook('onError', async (_request, _reply, err) => {
    if (err instanceof UpstreamError) m.upstreamErrors.inc({ kind: err.kind })
  })
  fastify.addHook('preHandler', async (request, reply) => {
    const body = request.body as { stream?: unknown } | undefined
    if (body === null || typeof body !== 'object' || body.stream !== true) return
    m.activeStreams.inc()
    reply.raw.once('close', () => m.activeStreams.dec())
  })
}, { name: 'qwen-metrics', fastify: '5.x', dependencies: ['qwen-events', 'qwen-identity-pool', 'qwen-request-lifecycle', 'qwen-store'] })
