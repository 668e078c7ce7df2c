import fp from 'fastify-plugin'
import type { UpstreamClient } from '../src/upstream/client.js'
import { connectUpstream } from '../src/upstream/connect.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The upstream client over the shared keep-alive dispatcher. */
    qwenUpstream: UpstreamClient
  }
}

/**
 * The upstream client over one shared dispatcher (plus one per per-identity proxy), all closed with
 * the app; an injected `dispatcher` is used as is and left open. At debug level (DEBUG_MODE),
 * upstream calls and frames are logged, redacted.
 */
export default fp(async (fastify) => {
  const upstream = connectUpstream(fastify.qwenConfig, fastify.log)
  fastify.decorate('qwenUpstream', upstream.client)
  fastify.addHook('onClose', async () => { await upstream.close() })
}, { name: 'qwen-upstream', fastify: '5.x', dependencies: ['qwen-config'] })
