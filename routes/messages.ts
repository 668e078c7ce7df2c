import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { toAnthropicError } from '../src/anthropic/errors.js'
import { anthropicMessage, messageId } from '../src/anthropic/message.js'
import { countTokensChatRequest, toChatRequest } from '../src/anthropic/request.js'
import {
  AnthropicErrorResponses, CountTokensRequestSchema, CountTokensResponseSchema, MessageResponseSchema, MessagesRequestSchema,
} from '../src/anthropic/schemas.js'
import { AnthropicStreamFace } from '../src/anthropic/stream.js'
import { serveFaceCompletion } from '../src/faces/responses-run.js'
import { prepareChat } from '../src/openai/request.js'
import { estimateTokens } from '../src/openai/transform.js'
import { SchemaCompiler } from '../src/tools/schema.js'

/**
 * The Anthropic Messages API: `POST /v1/messages` (SSE with named events when `stream: true`, one
 * JSON message otherwise) and `POST /v1/messages/count_tokens` (the gateway's estimate). Every error
 * on these routes, from validation and auth to the upstream, is in the Anthropic envelope.
 * `anthropic-version` and `anthropic-beta` are accepted whatever their value.
 */
const messages: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  // Compiled tool schemas, shared by this instance's requests (bounded).
  const options = { markers: cfg.toolCallMarkers, schemas: new SchemaCompiler() }

  fastify.setErrorHandler((err, request, reply) => {
    const { status, body, headers, code } = toAnthropicError(err)
    if (status >= 500) request.log.error({ err }, 'request failed')
    else request.log.info({ status, code, error: body.error.message }, 'request rejected')
    return reply.code(status).headers(headers).send(body)
  })

  fastify.post('/v1/messages', {
    bodyLimit: cfg.bodyLimitBytes,
    config: { qwenAuth: 'api' },
    schema: { body: MessagesRequestSchema, response: { 200: MessageResponseSchema, ...AnthropicErrorResponses } },
  }, async (request, reply) => {
    const id = messageId()
    return serveFaceCompletion(fastify, request, reply, options, () => ({
      chat: toChatRequest(request.body),
      streamFace: (model, chat) => new AnthropicStreamFace(id, model.requested, estimateTokens(chat.prompt)),
      json: (model, answer) => anthropicMessage(id, model.requested, answer),
    }))
  })

  fastify.post('/v1/messages/count_tokens', {
    bodyLimit: cfg.bodyLimitBytes,
    config: { qwenAuth: 'api' },
    schema: { body: CountTokensRequestSchema, response: { 200: CountTokensResponseSchema, ...AnthropicErrorResponses } },
  }, async (request) => {
    const chat = prepareChat(countTokensChatRequest(request.body), options)
    return { input_tokens: estimateTokens(chat.prompt) }
  })
}

export default messages
