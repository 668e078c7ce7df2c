import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponses } from '../src/schemas.js'

/** `GET /metrics`: Prometheus text; needs the admin key unless `metricsPublic`. */
const metrics: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  fastify.get('/metrics', {
    config: { qwenAuth: cfg.metricsPublic ? 'public' : 'admin' },
    schema: {
      description: 'Prometheus metrics (text exposition format); needs the admin key unless METRICS_PUBLIC=true',
      response: { 200: Type.String({ description: 'Prometheus text exposition format' }), ...ErrorResponses },
    },
  }, async (_request, reply) => {
    const m = fastify.qwenMetrics
    return reply.type(m.contentType).send(await m.text())
  })
}

export default metrics
