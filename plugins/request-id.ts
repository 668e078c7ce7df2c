import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request id echoed in `x-request-id`: the caller's, or a generated one. */
    qwenRequestId: string
  }
}

/** A caller's `x-request-id` is used only when it is a short token that is safe in logs and headers. */
export const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/

/** A new request id (`req_` and 32 hex digits). */
export function newRequestId (): string {
  return `req_${randomUUID().replace(/-/g, '')}`
}

/**
 * The request id for an incoming request: its `x-request-id` when that is a safe token, otherwise a
 * new one. Usable as Fastify's `genReqId` (with `requestIdHeader: false`), which is how `buildServer`
 * makes the log lines' `reqId` and the response's `x-request-id` the same value.
 */
export function requestIdFor (req: { headers: IncomingHttpHeaders }): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : newRequestId()
}

/**
 * `x-request-id`, echoed on every response. Standalone (`buildServer`), Fastify's request id already
 * is this id (see `requestIdFor`), so it is reused. Embedded, the host app's `genReqId` decides the
 * `reqId` of log lines: the host's id is echoed when it is a safe token and the caller sent no safe id
 * of its own; when the caller's id wins, the gateway's own log lines for the request also carry it as
 * `requestId`. (A host that wants one id everywhere passes `genReqId: requestIdFor`.)
 */
export default fp(async (fastify) => {
  fastify.decorateRequest('qwenRequestId', '')
  fastify.addHook('onRequest', async (request, reply) => {
    const given = request.headers['x-request-id']
    const id = typeof given === 'string' && SAFE_REQUEST_ID.test(given)
      ? given
      : (typeof request.id === 'string' && SAFE_REQUEST_ID.test(request.id) ? request.id : newRequestId())
    request.qwenRequestId = id
    if (id !== request.id) request.log = request.log.child({ requestId: id })
    reply.header('x-request-id', id)
  })
}, { name: 'qwen-request-id', fastify: '5.x' })
