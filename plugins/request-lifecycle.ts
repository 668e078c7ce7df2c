import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { RequestAborted, RequestScope } from '../src/lifecycle.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Abort, whole-request timeout and shutdown for long requests (completions). */
    qwenLifecycle: {
      /** Start watching a request (budget `timeoutMs`, default REQUEST_TIMEOUT_MS); call `end()` on the scope when it is over. */
      begin: (reply: FastifyReply, timeoutMs?: number) => RequestScope
      /** Requests in progress. */
      readonly live: ReadonlySet<RequestScope>
    }
  }
}

/**
 * The close policy lives here: on `preClose` every request in progress is aborted as `shutdown`
 * (streams end with an error frame, JSON requests with 503).
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const live = new Set<RequestScope>()
  fastify.decorate('qwenLifecycle', {
    begin: (reply: FastifyReply, timeoutMs?: number) => new RequestScope(reply.raw, timeoutMs ?? cfg.requestTimeoutMs, live),
    live,
  })
  fastify.addHook('preClose', async () => {
    for (const scope of live) scope.abort(new RequestAborted('shutdown'))
  })
}, { name: 'qwen-request-lifecycle', fastify: '5.x', dependencies: ['qwen-config'] })
