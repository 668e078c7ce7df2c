import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorResponses } from '../../src/schemas.js'

/** A comment line this often keeps proxies from closing a quiet stream. */
const PING_MS = 15_000

/**
 * `GET /admin/api/events`: Server-Sent Events for the dashboard (read with `fetch()`, so the key
 * travels in the `Authorization` header). A `state` snapshot on connect and whenever the pool
 * changes (coalesced), a `request` event per recorded request, a ping comment every 15 s. The
 * stream ends when the client leaves or the app closes.
 */
const adminEvents: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = fastify.qwenAdmin
  fastify.get('/admin/api/events', {
    config: { qwenAuth: 'public' },
    schema: {
      security: [{ apiKey: [] }], tags: ['admin'],
      description: 'Dashboard: live pool snapshots (`event: state`) and recorded requests (`event: request`) as text/event-stream (admin key)',
      response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...ErrorResponses },
    },
  }, async (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    })
    let open = true
    const write = (text: string): void => { if (open && !res.writableEnded) res.write(text) }
    const ping = setInterval(() => write(': ping\n\n'), PING_MS)
    const close = (): void => {
      if (!open) return
      open = false
      clearInterval(ping)
      detach()
      if (!res.writableEnded) res.end()
    }
    const detach = admin.attach({
      send: (event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
      close,
    })
    res.once('close', close)
    write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(admin.state())}\n\n`)
  })
}

export default adminEvents
