/**
 * Upstream frames → OpenAI output events: the OpenAI face's view of the turn pipeline
 * (`src/pipeline/`). Streaming and non-streaming responses both drive this one transformer, so they
 * cannot disagree: the stream writes each event as a chunk, the non-stream route concatenates them.
 */
import {
  FrameDecoder, UsageAccounting, textPipeline,
  type FinishReason, type Pipeline, type TextPipelineOptions, type ThinkingOutput, type TurnEvent,
} from '../pipeline/index.js'
import type { Frame, WebSearchInfo } from '../upstream/protocol.js'
import type { OutEvent } from '../faces/face.js'

export { TokenCounter, estimateTokens } from '../pipeline/index.js'
export type { FinishReason, ThinkingOutput, OutEvent }

export interface OpenAIUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details: { cached_tokens: number }
  completion_tokens_details: { reasoning_tokens: number }
}

export type TransformOptions = TextPipelineOptions

export class CompletionTransformer {
  /** Events produced since the consumer last drained them. */
  events: OutEvent[] = []
  finishReason: FinishReason | null = null
  /** The stop sequence that cut the answer, when one did. */
  stopSequence: string | undefined
  /** The answer is complete (or cut): stop reading the upstream. */
  ended = false
  readonly searchResults: WebSearchInfo[] = []
  private readonly decoder = new FrameDecoder()
  private readonly usage = new UsageAccounting()
  private readonly pipeline: Pipeline

  constructor (opts: TransformOptions) {
    this.pipeline = textPipeline(opts, this.usage)
  }

  /** The answer's response id (the parent of a next turn). */
  get responseId (): string | undefined { return this.decoder.responseId }

  /** The upstream itself said the answer is finished (as opposed to only a cut by stop or max_tokens). */
  get upstreamFinished (): boolean { return this.decoder.finished }

  /** Feed one upstream frame. Throws an UpstreamError for an error frame. */
  push (frame: Frame): void {
    if (this.ended) return
    for (const ev of this.decoder.push(frame)) {
      for (const out of this.pipeline.push(ev)) this.emit(out)
      if (this.ended) return
    }
  }

  private emit (ev: TurnEvent): void {
    switch (ev.kind) {
      case 'content':
      case 'reasoning':
        if (ev.text) this.events.push({ kind: ev.kind, text: ev.text })
        return
      case 'tool_call':
        this.events.push(ev)
        return
      case 'search':
        for (const r of ev.results) this.searchResults.push(r)
        return
      case 'finish':
        this.finishReason = ev.reason
        if (ev.stopSequence !== undefined) this.stopSequence = ev.stopSequence
        this.ended = true
        return
      default:
    }
  }

  /** Usage from the upstream's last cumulative frame, or the documented estimate. */
  usageFor (prompt: string): OpenAIUsage {
    const u = this.usage.totals(prompt)
    return {
      prompt_tokens: u.prompt,
      completion_tokens: u.completion,
      total_tokens: u.prompt + u.completion,
      prompt_tokens_details: { cached_tokens: u.cached },
      completion_tokens_details: { reasoning_tokens: u.reasoning },
    }
  }
}
