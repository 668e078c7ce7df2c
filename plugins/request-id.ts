import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request id echoed in `x-request-id`: the caller's, or a generated one. */
    qwenRequestId: string
  }
}

const SAFE_ID = /^[\w.:-]{1,128}$/

/**
 * `x-request-id`: taken from the request when it is a sane token, otherwise Fastify's request id
 * (which `buildServer` derives from the same header) or a new one; echoed on every response.
 */
export default fp(async (fastify) => {
  fastify.decorateRequest('qwenRequestId', '')
  fastify.addHook('onRequest', async (request, reply) => {
    const given = request.headers['x-request-id']
    const id = typeof given === 'string' && SAFE_ID.test(given) ? given : (request.id && SAFE_ID.test(request.id) ? request.id : `req_${randomUUID()}`)
    request.qwenRequestId = id
    reply.header('x-request-id', id)
  })
}, { name: 'qwen-request-id', fastify: '5.x' })
