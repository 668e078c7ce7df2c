import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { serveFaceCompletion } from '../src/faces/responses-run.js'
import { itemId, responseBody, type ResponseContext } from '../src/responses/output.js'
import { toChatRequest } from '../src/responses/request.js'
import { ResponseObjectSchema, ResponsesRequestSchema } from '../src/responses/schemas.js'
import { ResponsesStreamFace } from '../src/responses/stream.js'
import { ErrorResponses } from '../src/schemas.js'
import { SchemaCompiler } from '../src/tools/schema.js'

/**
 * The Responses API: `POST /v1/responses` (typed SSE events when `stream: true`, one `response`
 * object otherwise). Its answers continue upstream conversations like the chat route's; one with
 * `store` not false is also remembered under its id for `previous_response_id`
 * (`src/turn/previous.ts`). Errors keep the OpenAI envelope (the app's error handler).
 */
const responses: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  // Compiled tool and text.format schemas, shared by this instance's requests (bounded).
  const options = { markers: cfg.toolCallMarkers, schemas: new SchemaCompiler() }

  fastify.post('/v1/responses', {
    bodyLimit: cfg.bodyLimitBytes,
    config: { qwenAuth: 'api' },
    schema: { body: ResponsesRequestSchema, response: { 200: ResponseObjectSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    const createdAt = Math.floor(cfg.now() / 1000)
    const id = itemId('resp')
    const body = request.body
    // OpenAI keeps no response sent with `store: false`: neither does the gateway's map.
    const stored = body.store !== false && cfg.conversationMode === 'upstream'
    return serveFaceCompletion(fastify, request, reply, options, () => {
      const { chat, customTools } = toChatRequest(body)
      const ctx = (model: string): ResponseContext => ({ id, createdAt, model, request: body, customTools, stored })
      return {
        chat,
        streamFace: (model) => new ResponsesStreamFace(ctx(model.requested)),
        json: (model, answer) => responseBody(ctx(model.requested), answer),
        ...(stored ? { responseId: id } : {}),
        ...(typeof body.previous_response_id === 'string' ? { previousResponseId: body.previous_response_id } : {}),
      }
    })
  })
}

export default responses
