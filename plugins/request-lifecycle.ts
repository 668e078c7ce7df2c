import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { GatewayError } from '../src/errors.js'
import { RequestAborted, RequestScope } from '../src/lifecycle.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Abort, whole-request timeout and graceful drain for long requests (completions). */
    qwenLifecycle: {
      /** Start watching a request (budget `timeoutMs`, default REQUEST_TIMEOUT_MS); call `end()` on the scope when it is over. */
      begin: (reply: FastifyReply, timeoutMs?: number) => RequestScope
      /** Requests in progress. */
      readonly live: ReadonlySet<RequestScope>
      /** The app is closing: requests in progress may finish, new ones are refused (503). */
      readonly draining: boolean
    }
  }
  interface FastifyContextConfig {
    /** `true`: the route still answers while the app drains (liveness and readiness probes). */
    qwenDuringDrain?: boolean
  }
}

/** How long aborted requests get to write their error frame or status before the server closes. */
const ABORT_GRACE_MS = 1_000

/** The answer to a request that arrives while the app drains. */
function shuttingDown (): GatewayError {
  return new GatewayError('The gateway is shutting down; retry the request', { status: 503, type: 'server_error', code: 'server_shutting_down', headers: { 'retry-after': '1', connection: 'close' } })
}

/**
 * The close policy lives here. On `preClose` the app drains: new requests are answered 503
 * `server_shutting_down` (routes marked `qwenDuringDrain` still answer), requests in progress may
 * finish for up to `shutdownGraceMs`, and whatever is still running then is aborted as `shutdown`
 * (a stream ends with an error frame and `[DONE]`, a JSON request gets 503). Fastify then stops
 * listening and runs the `onClose` hooks (state flush).
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const live = new Set<RequestScope>()
  /** Resolves the drain's wait when the last live request ends. */
  let idle: (() => void) | undefined
  let draining = false
  const registry = {
    add: (s: RequestScope) => { live.add(s); return registry },
    delete: (s: RequestScope) => {
      const had = live.delete(s)
      if (live.size === 0) idle?.()
      return had
    },
  }
  fastify.decorate('qwenLifecycle', {
    begin: (reply: FastifyReply, timeoutMs?: number) => new RequestScope(reply.raw, timeoutMs ?? cfg.requestTimeoutMs, registry),
    live,
    get draining () { return draining },
  })
  fastify.addHook('onRequest', async (request) => {
    if (draining && request.routeOptions.config?.qwenDuringDrain !== true) throw shuttingDown()
  })
  fastify.addHook('preClose', async () => {
    draining = true
    for (const scope of live) scope.closeConnectionWhenDone()
    await untilIdle(cfg.shutdownGraceMs)
    if (live.size === 0) return
    for (const scope of live) scope.abort(new RequestAborted('shutdown'))
    // The aborted requests write their last words (error frame, 503) before Fastify stops listening.
    await untilIdle(ABORT_GRACE_MS)
  })

  /** Until no request is in progress, or `ms` has passed. */
  async function untilIdle (ms: number): Promise<void> {
    if (live.size === 0 || ms <= 0) return
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      idle = resolve
      timer = setTimeout(resolve, ms)
    })
    clearTimeout(timer)
    idle = undefined
  }
}, { name: 'qwen-request-lifecycle', fastify: '5.x', dependencies: ['qwen-config'] })
