import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { anthropicModel, anthropicModelList, wantsAnthropic } from '../src/anthropic/models.js'
import { AnthropicModelListSchema, AnthropicModelSchema } from '../src/anthropic/schemas.js'
import { ModelNotFoundError } from '../src/errors.js'
import { ErrorResponses, ModelListSchema, ModelParamsSchema, ModelSchema } from '../src/schemas.js'

/** `GET /v1/models` and `GET /v1/models/:id`; in the Anthropic shape when the request carries `anthropic-version`. */
const models: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/v1/models', {
    config: { qwenAuth: 'api' },
    schema: { response: { 200: Type.Union([ModelListSchema, AnthropicModelListSchema]), ...ErrorResponses } },
  }, async (request) => {
    const data = await fastify.qwenModels.list()
    return wantsAnthropic(request.headers) ? anthropicModelList(data) : { object: 'list' as const, data }
  })

  fastify.get('/v1/models/:id', {
    config: { qwenAuth: 'api' },
    schema: { params: ModelParamsSchema, response: { 200: Type.Union([ModelSchema, AnthropicModelSchema]), ...ErrorResponses } },
  }, async (request) => {
    const m = await fastify.qwenModels.get(request.params.id)
    if (!m) throw new ModelNotFoundError(request.params.id)
    return wantsAnthropic(request.headers) ? anthropicModel(m) : m
  })
}

export default models
