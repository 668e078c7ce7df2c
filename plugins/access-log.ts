import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { CompletionEvent, RequestEvent } from '../src/events.js'

/** Where one request stands: its completion (if any), whether its handler ran and finished, whether its response is over. */
interface Access {
  completion: CompletionEvent | undefined
  handlerStarted: boolean
  handlerDone: boolean
  closed: boolean
  logged: boolean
}

const ACCESS = Symbol('qwenAccess')
type Tracked = FastifyRequest & { [ACCESS]?: Access }

/**
 * One access line per request, for every route (`request completed`, or `completion` when the
 * request ran a completion: model, identity label, key name, status, TTFT, tokens), and the
 * `request` event that metrics count. The line is written once both the response is over and the
 * route handler has returned: a completion event is published inside the handler (its `finally`),
 * so it is always paired with its request, whether the reply was sent, hijacked for SSE, or cut by
 * the client. Handlers are wrapped in `onRoute` to know when they return.
 */
export default fp(async (fastify) => {
  const events = fastify.qwenEvents
  /** Requests whose handler is running, by request id (a caller may reuse an id: a short list). */
  const running = new Map<string, Access[]>()

  const finish = (request: Tracked, reply: FastifyReply, a: Access): void => {
    if (a.logged || !a.closed || (a.handlerStarted && !a.handlerDone)) return
    a.logged = true
    const c = a.completion
    const raw = reply.raw
    const status = c ? c.status : (raw.writableEnded ? raw.statusCode : 499)
    const e: RequestEvent = {
      requestId: request.qwenRequestId,
      method: request.method,
      route: request.is404 ? 'unmatched' : request.routeOptions.url ?? 'unmatched',
      status,
      durationMs: Math.round(reply.elapsedTime),
      key: request.qwenKeyName ?? undefined,
      completion: c,
    }
    const { requestId: _r, completion: _c, ...fields } = e
    if (c) {
      const { requestId: _id, status: _s, durationMs: _d, ...detail } = c
      request.log.info({ ...fields, ...detail }, 'completion')
    } else {
      request.log.info(fields, 'request completed')
    }
    events.emit('request', e)
  }

  const handlerDone = (request: Tracked, reply: FastifyReply): void => {
    const a = request[ACCESS]
    if (!a) return
    a.handlerDone = true
    const list = running.get(request.qwenRequestId)
    if (list) {
      const rest = list.filter((x) => x !== a)
      if (rest.length) running.set(request.qwenRequestId, rest)
      else running.delete(request.qwenRequestId)
    }
    finish(request, reply, a)
  }

  fastify.decorateRequest(ACCESS, undefined)
  fastify.addHook('onRequest', async (request: Tracked, reply) => {
    const a: Access = { completion: undefined, handlerStarted: false, handlerDone: false, closed: false, logged: false }
    request[ACCESS] = a
    reply.raw.once('close', () => {
      a.closed = true
      finish(request, reply, a)
    })
  })

  fastify.addHook('onRoute', (route) => {
    const handler = route.handler
    route.handler = function (this: unknown, request: Tracked, reply: FastifyReply) {
      const a = request[ACCESS]
      if (a) {
        a.handlerStarted = true
        const list = running.get(request.qwenRequestId)
        if (list) list.push(a)
        else running.set(request.qwenRequestId, [a])
      }
      let out: unknown
      try {
        out = handler.call(this as never, request, reply)
      } catch (err) {
        handlerDone(request, reply)
        throw err
      }
      if (out instanceof Promise) return out.finally(() => handlerDone(request, reply))
      handlerDone(request, reply)
      return out
    }
  })

  fastify.qwenEvents.on('completion', (e) => {
    const a = running.get(e.requestId)?.find((x) => x.completion === undefined)
    if (a) {
      a.completion = e
      return
    }
    // Published outside a route handler: logged on its own.
    const { requestId, ...fields } = e
    fastify.log.info({ reqId: requestId, ...fields }, 'completion')
  })
  fastify.qwenEvents.on('failover', (e) => {
    const { requestId, ...fields } = e
    fastify.log.warn({ reqId: requestId, ...fields }, 'attempt failed before anything reached the client; trying the next account')
  })
}, { name: 'qwen-access-log', fastify: '5.x', dependencies: ['qwen-events', 'qwen-request-id'] })
