/**
 * The Anthropic Messages answer: ids, `stop_reason`, usage, the content blocks, and the JSON body
 * of a non-streaming answer built from the runner's {@link CollectedAnswer}.
 */
import { randomBytes } from 'node:crypto'
import type { CollectedAnswer, ToolCallOut, TurnEnd } from '../faces/face.js'
import type { OpenAIUsage } from '../openai/transform.js'

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use'

export function messageId (): string {
  return 'msg_' + randomBytes(12).toString('hex')
}

/** The gateway's `call_…` id as Anthropic's `toolu_…`; ids the client sent back pass through unchanged. */
export function toolUseId (callId: string): string {
  return callId.startsWith('call_') ? `toolu_${callId.slice(5)}` : callId
}

export function stopReason (end: TurnEnd): StopReason {
  switch (end.reason) {
    case 'length': return 'max_tokens'
    case 'tool_calls': return 'tool_use'
    default: return end.stopSequence !== undefined ? 'stop_sequence' : 'end_turn'
  }
}

export interface AnthropicUsage {
  input_tokens: number
  output_tokens: number
  cache_creation_input_tokens: number
  cache_read_input_tokens: number
}

/** Anthropic counts cached input apart from `input_tokens`. */
export function anthropicUsage (u: OpenAIUsage): AnthropicUsage {
  const cached = u.prompt_tokens_details.cached_tokens
  return {
    input_tokens: u.prompt_tokens - cached,
    output_tokens: u.completion_tokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  }
}

/** A tool call's arguments as the `input` object (the runner hands over validated JSON objects). */
export function toolInput (call: ToolCallOut): Record<string, unknown> {
  const v = JSON.parse(call.arguments) as unknown
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {}
}

export type ContentBlock =
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }

export interface AnthropicMessage {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: ContentBlock[]
  stop_reason: StopReason
  stop_sequence: string | null
  usage: AnthropicUsage
}

/** The non-streaming body: thinking, then text, then tool calls (one empty text block when there is nothing else). */
export function anthropicMessage (id: string, model: string, a: CollectedAnswer): AnthropicMessage {
  const content: ContentBlock[] = []
  if (a.reasoning) content.push({ type: 'thinking', thinking: a.reasoning, signature: '' })
  if (a.content || a.toolCalls.length === 0) content.push({ type: 'text', text: a.content })
  for (const c of a.toolCalls) content.push({ type: 'tool_use', id: toolUseId(c.id), name: c.name, input: toolInput(c) })
  const reason = stopReason(a.end)
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: reason,
    stop_sequence: reason === 'stop_sequence' ? a.end.stopSequence! : null,
    usage: anthropicUsage(a.end.usage),
  }
}
