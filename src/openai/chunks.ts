/**
 * OpenAI response shapes. Stream chunks are serialised from a prefix built once per response, so a
 * chunk costs one small JSON.stringify of its delta.
 */
import { randomUUID } from 'node:crypto'
import type { FinishReason, OpenAIUsage, OutEvent } from './transform.js'

export function completionId (): string {
  return 'chatcmpl-' + randomUUID().replaceAll('-', '')
}

export const SYSTEM_FINGERPRINT = 'fp_qwen_gateway'

export class ChunkWriter {
  private readonly head: string
  private readonly tail: string

  constructor (readonly id: string, readonly created: number, readonly model: string, includeUsage: boolean) {
    this.head = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":"${SYSTEM_FINGERPRINT}","choices":[{"index":0,"delta":`
    this.tail = includeUsage ? ',"usage":null}\n\n' : '}\n\n'
  }

  private chunk (delta: string, finish: FinishReason | null): string {
    return `${this.head}${delta},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${this.tail}`
  }

  role (): string {
    return this.chunk('{"role":"assistant","content":"","refusal":null}', null)
  }

  /** Frames for a batch of events: reasoning as `reasoning_content`, answer text as `content`. */
  events (events: OutEvent[]): string {
    let out = ''
    for (const e of events) {
      out += this.chunk(e.kind === 'content' ? `{"content":${JSON.stringify(e.text)}}` : `{"reasoning_content":${JSON.stringify(e.text)}}`, null)
    }
    return out
  }

  finish (reason: FinishReason): string {
    return this.chunk('{}', reason)
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

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  system_fingerprint: string
  choices: Array<{
    index: 0
    message: { role: 'assistant'; content: string; refusal: null; reasoning_content?: string }
    logprobs: null
    finish_reason: FinishReason
  }>
  usage: OpenAIUsage
}

export function chatCompletion (id: string, created: number, model: string, content: string, reasoning: string, finish: FinishReason, usage: OpenAIUsage): ChatCompletion {
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content, refusal: null }
  if (reasoning) message.reasoning_content = reasoning
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage,
  }
}
