/**
 * One completion served through a face other than Chat Completions (Anthropic Messages, the
 * Responses API): the face's request is translated into the Chat Completions request, checked by the
 * shared `prepareChat`, then run by the shared `CompletionRunner` and rendered by the face (its
 * `StreamFace` for SSE, its JSON body from the `CollectedAnswer`). Abort, the whole-request budget,
 * a client that leaves, and the one `completion` event per answer work as on the OpenAI face.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { newRecord } from '../completion.js'
import { InvalidRequestError, clip } from '../errors.js'
import type { ResolvedModel } from '../models.js'
import { prepareChat, thinkingFor, type ChatOptions, type ChatRequest, type PreparedChat } from '../openai/request.js'
import { declaredTools, ownerOf } from '../conversations/hash.js'
import { DEFAULT_TOOL_MARKERS, MarkerSet } from '../tools/markers.js'
import { previousNotFound, previousResponse } from '../turn/previous.js'
import type { ConversationInput } from '../turn/plan.js'
import { completionEvent, failure } from './completion-end.js'
import type { CollectedAnswer, StreamFace } from './face.js'

export interface FaceCompletion<J> {
  /** The request in Chat Completions terms. */
  chat: ChatRequest
  /** The SSE renderer of this answer (made once the model is known and the request checked). */
  streamFace: (model: ResolvedModel, chat: PreparedChat) => StreamFace
  /** The JSON body of this answer. */
  json: (model: ResolvedModel, answer: CollectedAnswer) => J
  /** The gateway's id of this answer, remembered for a later `previous_response_id` (Responses API, `store` not false). */
  responseId?: string
  /** `previous_response_id`: continue that response's upstream chat with only this request's input. */
  previousResponseId?: string
}

/**
 * The conversation of a face's request, as the chat route builds it (`src/conversations/hash.ts`):
 * the same caller, model, tool names and messages in Chat Completions terms, so that a client
 * resending its history continues the upstream chat whichever API it speaks.
 */
async function conversationOf (fastify: FastifyInstance, request: FastifyRequest, face: FaceCompletion<unknown>, model: ResolvedModel, chat: PreparedChat, options: ChatOptions): Promise<ConversationInput> {
  const owner = ownerOf(request.qwenCaller!, request.qwenKeyName)
  const input: ConversationInput = {
    owner,
    model: model.requested,
    tools: declaredTools(face.chat),
    messages: face.chat.messages,
    markers: chat.tools?.markers ?? new MarkerSet(options.markers ?? DEFAULT_TOOL_MARKERS),
    ...(face.responseId !== undefined ? { responseId: face.responseId } : {}),
  }
  const id = face.previousResponseId
  if (id === undefined) return input
  // Fold mode remembers nothing: no response can be found.
  if (fastify.qwenConfig.conversationMode !== 'upstream') throw previousNotFound(id)
  return { ...input, previous: previousResponse(owner, id) }
}

/**
 * Serve one completion. `options` are `prepareChat`'s (the tool markers and the route's schema
 * cache). `translate` runs inside the request's scope, so its 400s are answered like
 * any other error (by the route's error handler). Returns the JSON body, or the reply once a stream
 * has been written.
 */
export async function serveFaceCompletion<J> (
  fastify: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  options: ChatOptions,
  translate: () => FaceCompletion<J>,
): Promise<J | FastifyReply> {
  const cfg = fastify.qwenConfig
  const scope = fastify.qwenLifecycle.begin(reply)
  const started = cfg.now()
  const rec = newRecord()
  let model: ResolvedModel | undefined
  let stream = false
  let status = 200
  try {
    const face = translate()
    const chat = prepareChat(face.chat, options)
    stream = chat.stream
    model = await fastify.qwenModels.resolve(face.chat.model, { signal: scope.signal })
    scope.check()
    if (model.media) {
      throw new InvalidRequestError(`The model \`${clip(model.requested)}\` generates ${model.media === 'video' ? 'videos' : 'images'}; use /v1/chat/completions or the Images and Videos APIs`, 'model')
    }
    // Images and documents in the face's messages: checked, fetched and attached like on the chat route.
    model = await fastify.qwenMediaInput.prepare(chat, face.chat.messages, model, scope.signal, request.log)
    scope.check()
    const conversation = await conversationOf(fastify, request, face as FaceCompletion<unknown>, model, chat, options)
    const req = {
      caller: request.qwenCaller!,
      model,
      chat,
      thinking: thinkingFor(model, chat.thinkingOverride),
      requestId: request.qwenRequestId,
      signal: scope.signal,
      conversation,
    }
    if (chat.stream) {
      await fastify.qwenCompletions.runner.stream(req, reply.raw, () => { reply.hijack(); return reply.getHeaders() }, rec, face.streamFace(model, chat))
      return reply
    }
    return face.json(model, await fastify.qwenCompletions.runner.collect(req, rec))
  } catch (err) {
    const f = failure(scope, reply, rec, err)
    if (f.closed) return reply
    status = f.status
    throw f.error
  } finally {
    scope.end()
    if (model) {
      fastify.qwenEvents.emit('completion', completionEvent(request.qwenRequestId, model.requested, stream, status, rec, cfg.now() - started))
    }
  }
}
