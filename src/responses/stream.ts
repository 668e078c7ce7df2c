/**
 * The Responses API SSE face: typed events, each named on its `event:` line and carrying its `type`
 * and a `sequence_number` (0, 1, 2, …):
 *
 *   response.created, response.in_progress (both wrap the `response` object) →
 *   per output item: response.output_item.added → its own deltas → response.output_item.done →
 *   response.completed (or response.failed), whose `response.output` lists every item.
 *
 * Reasoning is a `reasoning` item (`reasoning_summary_part.added`, `reasoning_summary_text.delta`/
 * `done`, `reasoning_summary_part.done`), answer text a `message` item (`content_part.added`,
 * `output_text.delta`/`done`, `content_part.done`), each tool call a `function_call` item
 * (`function_call_arguments.delta`/`done`) or, for a free-form tool, a `custom_tool_call` item
 * (`custom_tool_call_input.delta`/`done`). A text item stays open while events of its kind follow.
 */
import type { FaceError, OutEvent, StreamFace, ToolCallOut, TurnEnd } from '../faces/face.js'
import { KEEP_ALIVE } from '../openai/chunks.js'
import { fragments } from '../anthropic/stream.js'
import {
  callItem, itemId, messageItem, reasoningItem, responseObject, responsesUsage, statusOf, textPart,
  type OutputItem, type ResponseContext, type ResponseStatus,
} from './output.js'
import { customInput } from './tools.js'

/** Tool arguments and custom inputs are streamed in fragments of at most this many characters. */
export const ARGUMENT_FRAGMENT = 256

interface OpenItem { kind: 'reasoning' | 'message'; id: string; index: number; text: string }

export class ResponsesStreamFace implements StreamFace {
  readonly keepAlive = KEEP_ALIVE
  private seq = 0
  private readonly output: OutputItem[] = []
  private open: OpenItem | undefined

  constructor (private readonly ctx: ResponseContext) {}

  private ev (type: string, data: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.seq++, ...data })}\n\n`
  }

  start (): string {
    const response = responseObject(this.ctx, 'in_progress', [], null)
    return this.ev('response.created', { response }) + this.ev('response.in_progress', { response })
  }

  private openItem (kind: OpenItem['kind']): string {
    const it: OpenItem = { kind, id: (this.ctx.newId ?? itemId)(kind === 'reasoning' ? 'rs' : 'msg'), index: this.output.length, text: '' }
    this.open = it
    this.output.push(kind === 'reasoning' ? reasoningItem(it.id, '') : messageItem(it.id, undefined, 'in_progress'))
    const at = { item_id: it.id, output_index: it.index }
    if (kind === 'reasoning') {
      return this.ev('response.output_item.added', { output_index: it.index, item: reasoningItem(it.id, '') }) +
        this.ev('response.reasoning_summary_part.added', { ...at, summary_index: 0, part: { type: 'summary_text', text: '' } })
    }
    return this.ev('response.output_item.added', { output_index: it.index, item: messageItem(it.id, undefined, 'in_progress') }) +
      this.ev('response.content_part.added', { ...at, content_index: 0, part: textPart('') })
  }

  private closeItem (status: 'completed' | 'incomplete' = 'completed'): string {
    const it = this.open
    if (!it) return ''
    this.open = undefined
    const at = { item_id: it.id, output_index: it.index }
    if (it.kind === 'reasoning') {
      const done = reasoningItem(it.id, it.text)
      this.output[it.index] = done
      return this.ev('response.reasoning_summary_text.done', { ...at, summary_index: 0, text: it.text }) +
        this.ev('response.reasoning_summary_part.done', { ...at, summary_index: 0, part: { type: 'summary_text', text: it.text } }) +
        this.ev('response.output_item.done', { output_index: it.index, item: done })
    }
    const done = messageItem(it.id, it.text, status)
    this.output[it.index] = done
    return this.ev('response.output_text.done', { ...at, content_index: 0, text: it.text, logprobs: [] }) +
      this.ev('response.content_part.done', { ...at, content_index: 0, part: textPart(it.text) }) +
      this.ev('response.output_item.done', { output_index: it.index, item: done })
  }

  private call (c: ToolCallOut): string {
    let out = this.closeItem()
    const custom = this.ctx.customTools.has(c.name)
    const index = this.output.length
    const done = callItem(c, custom, 'completed')
    this.output.push(done)
    const at = { item_id: done.id, output_index: index }
    out += this.ev('response.output_item.added', { output_index: index, item: callItem(c, custom, 'in_progress', false) })
    if (custom) {
      const input = customInput(c)
      for (const delta of fragments(input, ARGUMENT_FRAGMENT)) out += this.ev('response.custom_tool_call_input.delta', { ...at, delta })
      out += this.ev('response.custom_tool_call_input.done', { ...at, input })
    } else {
      for (const delta of fragments(c.arguments, ARGUMENT_FRAGMENT)) out += this.ev('response.function_call_arguments.delta', { ...at, delta })
      out += this.ev('response.function_call_arguments.done', { ...at, name: c.name, arguments: c.arguments })
    }
    return out + this.ev('response.output_item.done', { output_index: index, item: done })
  }

  events (events: OutEvent[]): string {
    let out = ''
    for (const e of events) {
      if (e.kind === 'tool_call') {
        out += this.call(e.call)
        continue
      }
      const kind = e.kind === 'reasoning' ? 'reasoning' : 'message'
      if (this.open?.kind !== kind) out += this.closeItem() + this.openItem(kind)
      const it = this.open!
      it.text += e.text
      out += kind === 'reasoning'
        ? this.ev('response.reasoning_summary_text.delta', { item_id: it.id, output_index: it.index, summary_index: 0, delta: e.text })
        : this.ev('response.output_text.delta', { item_id: it.id, output_index: it.index, content_index: 0, delta: e.text, logprobs: [] })
    }
    return out
  }

  end (end: TurnEnd): string {
    const status: ResponseStatus = statusOf(end)
    const itemStatus = status === 'incomplete' ? 'incomplete' : 'completed'
    let out = this.closeItem(itemStatus)
    // An answer with no item still lists one (empty) message, as the JSON body does.
    if (this.output.length === 0) out += this.openItem('message') + this.closeItem(itemStatus)
    return out + this.ev('response.completed', { response: responseObject(this.ctx, status, this.output, responsesUsage(end.usage)) })
  }

  fail (error: FaceError): string {
    const out = this.closeItem('incomplete')
    const failed = responseObject(this.ctx, 'failed', this.output, null, { code: error.code ?? error.type, message: error.message })
    return out + this.ev('response.failed', { response: failed })
  }
}
