import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

/** `GET /openapi.json` (public): the OpenAPI 3.1 document generated from the route schemas. */
const openapi: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/openapi.json', {
    config: { qwenAuth: 'public' },
    schema: { description: 'This API described in OpenAPI 3.1', response: { 200: Type.Object({}, { additionalProperties: true }) } },
  }, async () => fastify.qwenOpenApi())
}

export default openapi
