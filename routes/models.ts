import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ModelNotFoundError } from '../src/errors.js'
import { ErrorResponses, ModelListSchema, ModelParamsSchema, ModelSchema } from '../src/schemas.js'

/** `GET /v1/models` and `GET /v1/models/:id`. */
const models: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/v1/models', {
    config: { qwenAuth: 'api' },
    schema: { response: { 200: ModelListSchema, ...ErrorResponses } },
  }, async () => ({ object: 'list' as const, data: await fastify.qwenModels.list() }))

  fastify.get('/v1/models/:id', {
    config: { qwenAuth: 'api' },
    schema: { params: ModelParamsSchema, response: { 200: ModelSchema, ...ErrorResponses } },
  }, async (request) => {
    const m = await fastify.qwenModels.get(request.params.id)
    if (!m) throw new ModelNotFoundError(request.params.id)
    return m
  })
}

export default models
