import fp from 'fastify-plugin'

/**
 * One access-log line per completion (model, identity, status, TTFT, usage, chat id), written by
 * subscribing to the `completion` event rather than from inside the request path.
 */
export default fp(async (fastify) => {
  fastify.qwenEvents.on('completion', (e) => {
    const { requestId, ...fields } = e
    fastify.log.info({ reqId: requestId, ...fields }, 'completion')
  })
  fastify.qwenEvents.on('failover', (e) => {
    const { requestId, ...fields } = e
    fastify.log.warn({ reqId: requestId, ...fields }, 'attempt failed before anything reached the client; trying the next account')
  })
}, { name: 'qwen-access-log', fastify: '5.x', dependencies: ['qwen-events'] })
