import fp from 'fastify-plugin'
import { GatewayEvents } from '../src/events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's typed event surface (completions, failovers, health, tokens, chats). */
    qwenEvents: GatewayEvents
  }
}

/** One emitter per app instance; listeners are dropped on close. */
export default fp(async (fastify) => {
  const events = new GatewayEvents((err, event) => fastify.log.warn({ err: (err as Error).message, event }, 'event listener failed'))
  fastify.decorate('qwenEvents', events)
  fastify.addHook('onClose', async () => { events.clear() })
}, { name: 'qwen-events', fastify: '5.x' })
