/**
 * How a completion request ends, the same on every face (Chat Completions, Anthropic Messages, the
 * Responses API): a client that left gets its socket closed and counts as 499; any other failure is
 * answered with the request's own abort reason (timeout, shutdown) or the error; and one `completion`
 * event is built from the request's record.
 */
import type { FastifyReply } from 'fastify'
import type { CompletionRecord } from '../completion.js'
import { toOpenAIError } from '../errors.js'
import type { CompletionEvent } from '../events.js'
import type { RequestScope } from '../lifecycle.js'

export type Failure = { closed: true } | { closed: false; error: unknown; status: number }

/**
 * What a failed request answers. `ownTimeout`: the error already says why the request's budget ran
 * out (a video's VIDEO_TIMEOUT_MS), so a timeout reason does not replace it.
 */
export function failure (scope: RequestScope, reply: FastifyReply, rec: CompletionRecord, err: unknown, ownTimeout = false): Failure {
  const reason = scope.reason()
  if (reason?.kind === 'client_closed') {
    rec.outcome = 'client_closed'
    reply.hijack()
    if (!reply.raw.destroyed) reply.raw.destroy()
    return { closed: true }
  }
  const error = reason && !(reason.kind === 'timeout' && ownTimeout) ? reason.toError() : err
  return { closed: false, error, status: toOpenAIError(error).status }
}

/** The one `completion` event of a request that got as far as a model. */
export function completionEvent (requestId: string, model: string, stream: boolean, status: number, rec: CompletionRecord, durationMs: number): CompletionEvent {
  return {
    requestId,
    model,
    stream,
    identity: rec.identity,
    status: rec.outcome === 'client_closed' ? 499 : status,
    outcome: rec.outcome,
    attempts: rec.attempts,
    ttftMs: rec.ttftMs,
    durationMs,
    usage: rec.usage && { prompt: rec.usage.prompt_tokens, completion: rec.usage.completion_tokens, reasoning: rec.usage.completion_tokens_details.reasoning_tokens },
    finishReason: rec.finishReason,
    chatId: rec.chatId,
    error: rec.error,
    ...(rec.remembered ? { remembered: true } : {}),
  }
}
