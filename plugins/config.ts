import fp from 'fastify-plugin'
import { resolveOptions, type GatewayOptions, type ResolvedOptions } from '../src/options.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The gateway's resolved options. */
    qwenConfig: ResolvedOptions
  }
}

/** Resolves the plugin options once; every other plugin reads them from `qwenConfig`. */
export default fp<GatewayOptions>(async (fastify, opts) => {
  fastify.decorate('qwenConfig', resolveOptions(opts))
}, { name: 'qwen-config', fastify: '5.x' })
