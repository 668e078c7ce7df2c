/**
 * OpenAI response shapes. Stream chunks are serialised from a prefix built once per response, so a
 * chunk costs one small JSON.stringify of its delta.
 */
import { randomUUID } from 'node:crypto'
import type { CollectedAnswer, EndReason, OutEvent, ToolCallOut } from '../faces/face.js'
import type { OpenAIUsage } from './transform.js'
import { urlCitations, type UrlCitation } from './citations.js'

export function completionId (): string {
  return 'chatcmpl-' + randomUUID().replaceAll('-', '')
}

export const SYSTEM_FINGERPRINT = 'fp_qwen_gateway'

export class ChunkWriter {
  private readonly head: string
  private readonly tail: string

  /** `legacy`: the request used `functions`, so calls go out as `function_call` (CONTRACT §1.3). */
  constructor (readonly id: string, readonly created: number, readonly model: string, includeUsage: boolean, private readonly legacy = false) {
    this.head = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":"${SYSTEM_FINGERPRINT}","choices":[{"index":0,"delta":`
    this.tail = includeUsage ? ',"usage":null}\n\n' : '}\n\n'
  }

  private chunk (delta: string, finish: FinishReason | null): string {
    return `${this.head}${delta},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${this.tail}`
  }

  role (): string {
    return this.chunk('{"role":"assistant","content":"","refusal":null}', null)
  }

  /**
   * Frames for a batch of events: reasoning as `reasoning_content`, answer text as `content`, and
   * each tool call as two deltas (CONTRACT rule 5): the first with index, id, type and the whole
   * name (`arguments: ""`), the second with the arguments.
   */
  events (events: OutEvent[]): string {
    let out = ''
    for (const e of events) {
      switch (e.kind) {
        case 'content': out += this.chunk(`{"content":${JSON.stringify(e.text)}}`, null); break
        case 'reasoning': out += this.chunk(`{"reasoning_content":${JSON.stringify(e.text)}}`, null); break
        case 'tool_call': {
          const c = e.call
          if (this.legacy) {
            out += this.chunk(`{"function_call":{"name":${JSON.stringify(c.name)},"arguments":""}}`, null)
            out += this.chunk(`{"function_call":{"arguments":${JSON.stringify(c.arguments)}}}`, null)
            break
          }
          out += this.chunk(`{"tool_calls":[{"index":${c.index},"id":${JSON.stringify(c.id)},"type":"function","function":{"name":${JSON.stringify(c.name)},"arguments":""}}]}`, null)
          out += this.chunk(`{"tool_calls":[{"index":${c.index},"function":{"arguments":${JSON.stringify(c.arguments)}}}]}`, null)
        }
      }
    }
    return out
  }

  /** The finish chunk; its delta carries the answer's citations, when there are any. */
  finish (reason: EndReason, annotations: UrlCitation[] = []): string {
    return this.chunk(annotations.length ? `{"annotations":${JSON.stringify(annotations)}}` : '{}', finishReason(reason, this.legacy))
  }

  /** The final usage chunk (`choices: []`), only when the client asked for it. */
  usage (usage: OpenAIUsage): string {
    return `data: {"id":${JSON.stringify(this.id)},"object":"chat.completion.chunk","created":${this.created},"model":${JSON.stringify(this.model)},"system_fingerprint":"${SYSTEM_FINGERPRINT}","choices":[],"usage":${JSON.stringify(usage)}}\n\n`
  }
}

export const DONE = 'data: [DONE]\n\n'
export const KEEP_ALIVE = ': keep-alive\n\n'

export function errorFrame (error: { message: string; type: string; param: string | null; code: string | null }): string {
  return `data: ${JSON.stringify({ error })}\n\n`
}

export interface ChatToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  system_fingerprint: string
  choices: Array<{
    index: 0
    message: {
      role: 'assistant'
      content: string | null
      refusal: null
      reasoning_content?: string
      tool_calls?: ChatToolCall[]
      function_call?: { name: string; arguments: string }
      annotations?: UrlCitation[]
    }
    logprobs: null
    finish_reason: FinishReason
  }>
  usage: OpenAIUsage
}

/** The legacy `functions` API ends a call with `function_call`. */
export type FinishReason = EndReason | 'function_call'

function finishReason (reason: EndReason, legacy: boolean): FinishReason {
  return legacy && reason === 'tool_calls' ? 'function_call' : reason
}

export function toolCallJson (c: ToolCallOut): ChatToolCall {
  return { id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }
}

/**
 * The non-streaming body. With tool calls and no text, `content` is `null` (CONTRACT rule 10); a
 * `legacy` (`functions`) request gets its call as `message.function_call`.
 */
export function chatCompletion (id: string, created: number, model: string, a: CollectedAnswer, legacy = false): ChatCompletion {
  const calls = a.toolCalls
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content: calls.length > 0 && !a.content ? null : a.content, refusal: null }
  if (a.reasoning) message.reasoning_content = a.reasoning
  const annotations = urlCitations(a.content, a.end.sources ?? [])
  if (annotations.length) message.annotations = annotations
  if (calls.length > 0 && legacy) message.function_call = { name: calls[0]!.name, arguments: calls[0]!.arguments }
  else if (calls.length > 0) message.tool_calls = calls.map(toolCallJson)
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(a.end.reason, legacy) }],
    usage: a.end.usage,
  }
}
