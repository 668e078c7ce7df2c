/**
 * The Anthropic Messages SSE face. Every frame is a named event whose `event:` line repeats its
 * `data.type` (the SDK skips frames without one):
 *
 *   message_start → (content_block_start → content_block_delta* → content_block_stop)* →
 *   message_delta (stop_reason, usage) → message_stop
 *
 * Reasoning is a `thinking` block, answer text a `text` block, each tool call a `tool_use` block
 * whose input arrives as `input_json_delta` fragments. A block stays open while events of its kind
 * follow; another kind closes it and opens the next index. Keep-alive is a `ping` event; a failure
 * after the commit is an `error` event (no `message_stop`).
 */
import type { FaceError, OutEvent, StreamFace, TurnEnd } from '../faces/face.js'
import { anthropicErrorEvent } from './errors.js'
import { anthropicUsage, stopReason, toolUseId } from './message.js'

/** One named event: `event: <type>` then its JSON. */
export function namedEvent (data: { type: string; [k: string]: unknown }): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`
}

/** Tool input is streamed in fragments of at most this many characters. */
export const INPUT_FRAGMENT = 256

/** `text` cut into pieces of at most `size` characters, never between the halves of a surrogate pair. */
export function fragments (text: string, size: number): string[] {
  const out: string[] = []
  let i = 0
  while (i < text.length) {
    let j = Math.min(i + size, text.length)
    const last = text.charCodeAt(j - 1)
    if (j < text.length && last >= 0xd800 && last <= 0xdbff) j++
    out.push(text.slice(i, j))
    i = j
  }
  return out
}

export class AnthropicStreamFace implements StreamFace {
  readonly keepAlive = namedEvent({ type: 'ping' })
  private index = -1
  private open: 'thinking' | 'text' | undefined

  /** `inputTokens` is the prompt estimate shown in `message_start` (the final count comes in `message_delta`). */
  constructor (private readonly id: string, private readonly model: string, private readonly inputTokens: number) {}

  start (): string {
    return namedEvent({
      type: 'message_start',
      message: {
        id: this.id,
        type: 'message',
        role: 'assistant',
        model: this.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: this.inputTokens, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    })
  }

  private close (): string {
    if (this.open === undefined) return ''
    this.open = undefined
    return namedEvent({ type: 'content_block_stop', index: this.index })
  }

  private begin (block: Record<string, unknown>): string {
    const out = this.close()
    this.index++
    return out + namedEvent({ type: 'content_block_start', index: this.index, content_block: block })
  }

  events (events: OutEvent[]): string {
    let out = ''
    for (const e of events) {
      if (e.kind === 'tool_call') {
        const c = e.call
        out += this.begin({ type: 'tool_use', id: toolUseId(c.id), name: c.name, input: {} })
        for (const part of fragments(c.arguments, INPUT_FRAGMENT)) {
          out += namedEvent({ type: 'content_block_delta', index: this.index, delta: { type: 'input_json_delta', partial_json: part } })
        }
        out += namedEvent({ type: 'content_block_stop', index: this.index })
        continue
      }
      const kind = e.kind === 'reasoning' ? 'thinking' : 'text'
      if (this.open !== kind) {
        out += this.begin(kind === 'thinking' ? { type: 'thinking', thinking: '', signature: '' } : { type: 'text', text: '' })
        this.open = kind
      }
      const delta = kind === 'thinking' ? { type: 'thinking_delta', thinking: e.text } : { type: 'text_delta', text: e.text }
      out += namedEvent({ type: 'content_block_delta', index: this.index, delta })
    }
    return out
  }

  end (end: TurnEnd): string {
    let out = this.close()
    // An answer with no block at all still shows one (empty) text block, as the JSON body does.
    if (this.index < 0) out += this.begin({ type: 'text', text: '' }) + namedEvent({ type: 'content_block_stop', index: this.index })
    const reason = stopReason(end)
    const usage = anthropicUsage(end.usage)
    return out +
      namedEvent({
        type: 'message_delta',
        delta: { stop_reason: reason, stop_sequence: reason === 'stop_sequence' ? end.stopSequence! : null },
        usage: { output_tokens: usage.output_tokens, input_tokens: usage.input_tokens, cache_read_input_tokens: usage.cache_read_input_tokens },
      }) +
      namedEvent({ type: 'message_stop' })
  }

  fail (error: FaceError): string {
    return this.close() + anthropicErrorEvent(error)
  }
}
