import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { newRecord } from '../src/completion.js'
import { completionEvent, failure } from '../src/faces/completion-end.js'
import { OpenAIStreamFace } from '../src/faces/openai-stream.js'
import type { ResolvedModel } from '../src/models.js'
import { chatCompletion, completionId } from '../src/openai/chunks.js'
import { prepareChat, thinkingFor } from '../src/openai/request.js'
import { ChatCompletionSchema, ChatRequestSchema, ErrorResponses } from '../src/schemas.js'
import { SchemaCompiler } from '../src/tools/schema.js'
import { MarkerSet } from '../src/tools/markers.js'
import { declaredTools, ownerOf } from '../src/conversations/hash.js'

/** `POST /v1/chat/completions`: SSE when `stream: true`, one JSON body otherwise. */
const chatCompletions: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  const { runner } = fastify.qwenCompletions
  const events = fastify.qwenEvents
  // Compiled tool and response_format schemas, shared by this instance's requests (bounded).
  const schemas = new SchemaCompiler()
  const markers = new MarkerSet(cfg.toolCallMarkers)

  fastify.post('/v1/chat/completions', {
    bodyLimit: cfg.bodyLimitBytes,
    config: { qwenAuth: 'api' },
    schema: { body: ChatRequestSchema, response: { 200: ChatCompletionSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    // Cancellation and the whole-request budget start first, so that nothing (the model list, a
    // token fetch) runs unwatched.
    let scope = fastify.qwenLifecycle.begin(reply)
    const body = request.body
    const started = cfg.now()
    const rec = newRecord()
    let model: ResolvedModel | undefined
    let stream = false
    let status = 200
    try {
      const chat = prepareChat(body, { markers: cfg.toolCallMarkers, schemas })
      stream = chat.stream
      model = await fastify.qwenModels.resolve(body.model, { signal: scope.signal })
      scope.check()
      // Media bytes are checked (and URLs fetched) before any identity is leased.
      model = await fastify.qwenMediaInput.prepare(chat, body.messages, model, scope.signal, request.log)
      scope.check()
      const id = completionId()
      const created = Math.floor(started / 1000)
      if (model.media) {
        // Generation models (src/media/generate-chat.ts); a video has VIDEO_TIMEOUT_MS instead of REQUEST_TIMEOUT_MS.
        if (model.media === 'video') {
          scope.end()
          scope = fastify.qwenLifecycle.begin(reply, cfg.videoTimeoutMs)
        }
        const media = fastify.qwenMedia.chat
        const mr = {
          caller: request.qwenCaller!, model, messages: body.messages, size: (body as { size?: unknown }).size, attachments: chat.attachments,
          stream: chat.stream, requestId: request.qwenRequestId, signal: scope.signal,
        }
        if (!chat.stream) return chatCompletion(id, created, model.requested, await media.collect(mr, rec))
        await media.stream(mr, reply.raw, () => { reply.hijack(); return reply.getHeaders() }, new OpenAIStreamFace(id, created, model.requested, chat.includeUsage), rec)
        return reply
      }
      const req = {
        caller: request.qwenCaller!,
        model,
        chat,
        thinking: thinkingFor(model, chat.thinkingOverride),
        requestId: request.qwenRequestId,
        signal: scope.signal,
        conversation: {
          owner: ownerOf(request.qwenCaller!, request.qwenKeyName),
          model: model.requested,
          tools: declaredTools(body),
          messages: body.messages,
          markers: chat.tools?.markers ?? markers,
        },
      }
      if (chat.stream) {
        const face = new OpenAIStreamFace(id, created, model.requested, chat.includeUsage, chat.tools?.legacy)
        await runner.stream(req, reply.raw, () => { reply.hijack(); return reply.getHeaders() }, rec, face)
        return reply
      }
      return chatCompletion(id, created, model.requested, await runner.collect(req, rec), chat.tools?.legacy)
    } catch (err) {
      // A video's own timeout says VIDEO_TIMEOUT_MS (src/media/generate-chat.ts).
      const f = failure(scope, reply, rec, err, model?.media === 'video')
      if (f.closed) return reply
      status = f.status
      throw f.error
    } finally {
      scope.end()
      // One event per completion that got as far as a model (refusals are logged by the error handler).
      if (model) {
        events.emit('completion', completionEvent(request.qwenRequestId, model.requested, stream, status, rec, cfg.now() - started))
      }
    }
  })
}

export default chatCompletions
