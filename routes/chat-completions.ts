import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RequestAborted, abortReason, type CompletionRecord } from '../src/completion.js'
import { toOpenAIError } from '../src/errors.js'
import type { ResolvedModel } from '../src/models.js'
import { prepareChat, thinkingFor, type ChatRequest } from '../src/openai/request.js'
import { ChatCompletionSchema, ChatRequestSchema, ErrorResponses } from '../src/schemas.js'

/** `POST /v1/chat/completions`: SSE when `stream: true`, one JSON body otherwise. */
const chatCompletions: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  const { runner, live } = fastify.qwenCompletions

  fastify.post('/v1/chat/completions', {
    bodyLimit: cfg.bodyLimitBytes,
    config: { qwenAuth: 'api' },
    schema: { body: ChatRequestSchema, response: { 200: ChatCompletionSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    // Cancellation and the whole-request budget start first, so that nothing (the model list, a
    // token fetch) runs unwatched. Cancellation comes from the response side: request.signal is
    // unreliable on POST (FASTIFY §3.2).
    const ac = new AbortController()
    const onClose = (): void => { if (!reply.raw.writableEnded) ac.abort(new RequestAborted('client_closed')) }
    reply.raw.once('close', onClose)
    const timer = setTimeout(() => ac.abort(new RequestAborted('timeout')), cfg.requestTimeoutMs)
    timer.unref()
    live.add(ac)

    const body = request.body as ChatRequest
    const started = cfg.now()
    const rec: CompletionRecord = { attempts: 0, outcome: 'error' }
    let model: ResolvedModel | undefined
    let stream = false
    let status = 200
    try {
      const chat = prepareChat(body)
      stream = chat.stream
      model = await fastify.qwenModels.resolve(body.model)
      const given = abortReason(ac.signal)
      if (given) throw given
      const req = {
        caller: request.qwenCaller!,
        model,
        chat,
        thinking: thinkingFor(model, chat.thinkingOverride),
        requestId: request.qwenRequestId,
        signal: ac.signal,
      }
      if (chat.stream) {
        await runner.stream(req, reply.raw, () => { reply.hijack(); return reply.getHeaders() }, rec)
        return reply
      }
      return await runner.collect(req, rec)
    } catch (err) {
      const reason = abortReason(ac.signal)
      if (reason?.kind === 'client_closed') {
        rec.outcome = 'client_closed'
        reply.hijack()
        if (!reply.raw.destroyed) reply.raw.destroy()
        return reply
      }
      const e = reason ? reason.toError() : err
      status = toOpenAIError(e).status
      throw e
    } finally {
      clearTimeout(timer)
      live.delete(ac)
      reply.raw.off('close', onClose)
      // One access-log line per completion that got as far as a model (refusals are logged by the error handler).
      if (model) {
        request.log.info({
          model: model.requested,
          stream,
          identity: rec.identity,
          status: rec.outcome === 'client_closed' ? 499 : status,
          outcome: rec.outcome,
          attempts: rec.attempts,
          ttftMs: rec.ttftMs,
          durationMs: cfg.now() - started,
          usage: rec.usage && { prompt: rec.usage.prompt_tokens, completion: rec.usage.completion_tokens, reasoning: rec.usage.completion_tokens_details.reasoning_tokens },
          finishReason: rec.finishReason,
          chatId: rec.chatId,
          error: rec.error,
        }, 'completion')
      }
    }
  })
}

export default chatCompletions
