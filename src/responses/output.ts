/**
 * The Responses API answer: ids, output items, usage and the `response` object (the non-streaming
 * body, and what `response.created`/`response.completed` wrap in a stream). Request options are
 * echoed back as the API does.
 */
import { randomBytes } from 'node:crypto'
import type { CollectedAnswer, ToolCallOut, TurnEnd } from '../faces/face.js'
import type { OpenAIUsage } from '../openai/transform.js'
import { customInput } from './tools.js'
import type { ResponsesRequest } from './schemas.js'

export function itemId (prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`
}

/** Everything a response needs to know about its request. */
export interface ResponseContext {
  id: string
  /** Seconds since the epoch. */
  createdAt: number
  /** The model name the client asked for. */
  model: string
  request: ResponsesRequest
  /** Names of the free-form (`custom`) tools: their calls are `custom_tool_call` items. */
  customTools: Set<string>
  /** Makes output item ids (`rs_…`, `msg_…`); tests pass a counter. */
  newId?: (prefix: string) => string
  /** The answer is remembered for `previous_response_id` (`store` not false, conversations on). */
  stored?: boolean
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete'

export interface ResponsesUsage {
  input_tokens: number
  input_tokens_details: { cached_tokens: number }
  output_tokens: number
  output_tokens_details: { reasoning_tokens: number }
  total_tokens: number
}

export function responsesUsage (u: OpenAIUsage): ResponsesUsage {
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.prompt_tokens_details.cached_tokens },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: u.completion_tokens_details.reasoning_tokens },
    total_tokens: u.total_tokens,
  }
}

export type OutputItem = Record<string, unknown> & { type: string; id: string }

export function reasoningItem (id: string, text: string): OutputItem {
  return { type: 'reasoning', id, summary: text ? [{ type: 'summary_text', text }] : [] }
}

export function textPart (text: string): Record<string, unknown> {
  return { type: 'output_text', text, annotations: [], logprobs: [] }
}

export function messageItem (id: string, text: string | undefined, status: ItemStatus): OutputItem {
  return { type: 'message', id, status, role: 'assistant', content: text === undefined ? [] : [textPart(text)] }
}

/** A tool call as a `function_call` item, or a `custom_tool_call` for a free-form tool. */
export function callItem (call: ToolCallOut, custom: boolean, status: ItemStatus, done = true): OutputItem {
  const suffix = call.id.replace(/^call_/, '')
  if (custom) {
    return { type: 'custom_tool_call', id: `ctc_${suffix}`, status, call_id: call.id, name: call.name, input: done ? customInput(call) : '' }
  }
  return { type: 'function_call', id: `fc_${suffix}`, status, call_id: call.id, name: call.name, arguments: done ? call.arguments : '' }
}

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed'

export function statusOf (end: TurnEnd): ResponseStatus {
  return end.reason === 'length' ? 'incomplete' : 'completed'
}

export interface ResponseObject {
  id: string
  object: 'response'
  created_at: number
  status: ResponseStatus
  model: string
  output: OutputItem[]
  usage: ResponsesUsage | null
  [field: string]: unknown
}

/** The `response` object, echoing the request's options. */
export function responseObject (
  ctx: ResponseContext,
  status: ResponseStatus,
  output: OutputItem[],
  usage: ResponsesUsage | null,
  error: { code: string; message: string } | null = null,
): ResponseObject {
  const r = ctx.request
  return {
    id: ctx.id,
    object: 'response',
    created_at: ctx.createdAt,
    status,
    background: false,
    error,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model: ctx.model,
    output,
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: r.previous_response_id ?? null,
    reasoning: { effort: r.reasoning?.effort ?? null, summary: r.reasoning?.summary ?? null },
    store: ctx.stored === true,
    temperature: r.temperature ?? 1,
    text: { format: r.text?.format ?? { type: 'text' }, verbosity: r.text?.verbosity ?? 'medium' },
    tool_choice: r.tool_choice ?? 'auto',
    tools: r.tools ?? [],
    top_p: r.top_p ?? 1,
    truncation: 'disabled',
    usage,
    user: r.user ?? null,
    metadata: r.metadata ?? {},
  }
}

/** The non-streaming body: reasoning, then the message, then the tool calls. */
export function responseBody (ctx: ResponseContext, a: CollectedAnswer): ResponseObject & { usage: ResponsesUsage } {
  const status = statusOf(a.end)
  const output: OutputItem[] = []
  const newId = ctx.newId ?? itemId
  if (a.reasoning) output.push(reasoningItem(newId('rs'), a.reasoning))
  if (a.content || a.toolCalls.length === 0) output.push(messageItem(newId('msg'), a.content, status === 'incomplete' ? 'incomplete' : 'completed'))
  for (const c of a.toolCalls) output.push(callItem(c, ctx.customTools.has(c.name), 'completed'))
  return { ...responseObject(ctx, status, output, null), usage: responsesUsage(a.end.usage) }
}
