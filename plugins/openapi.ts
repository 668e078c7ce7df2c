import swagger from '@fastify/swagger'
import fp from 'fastify-plugin'
import { VERSION } from '../src/version.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The OpenAPI 3.1 document of the gateway's routes (built from their schemas on first call). */
    qwenOpenApi: () => Record<string, unknown>
  }
}

/**
 * `@fastify/swagger` over every route registered after it (the routes of later issues are picked up
 * from their schemas), under its own decorator so that a host app's swagger is left alone. Routes
 * that need a key say so (`security`); HEAD twins are left out.
 */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    decorator: 'qwenOpenApi',
    openapi: {
      openapi: '3.1.0',
      info: { title: 'qwen-gateway', version: VERSION, description: 'The Qwen web chat served as the OpenAI API' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API_KEY entry (or the admin key)' } } },
    },
    transform: ({ schema, url, route }) => {
      const auth = route.config?.qwenAuth ?? 'api'
      const s = { ...(schema ?? {}) } as Record<string, unknown>
      if (auth !== 'public') s.security = [{ apiKey: [] }]
      if (auth === 'admin') s.description = `${String(s.description ?? '')} (admin key)`.trim()
      return { schema: s, url }
    },
  })
}, { name: 'qwen-openapi', fastify: '5.x' })
