/**
 * Upstream frames → OpenAI output events. Streaming and non-streaming responses both drive this one
 * transformer, so they cannot disagree: the stream writes each event as a chunk, the non-stream
 * route concatenates them.
 */
import { problemToError } from '../upstream/client.js'
import { readFrame, type Frame, type UsageCounts, type WebSearchInfo } from '../upstream/protocol.js'

export type ThinkingOutput = 'reasoning_content' | 'think_tags' | 'hidden'
export type FinishReason = 'stop' | 'length'

export interface OutEvent { kind: 'reasoning' | 'content'; text: string }

export interface OpenAIUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details: { cached_tokens: number }
  completion_tokens_details: { reasoning_tokens: number }
}

export interface TransformOptions {
  thinkingOutput: ThinkingOutput
  stop: string[]
  maxTokens: number | undefined
}

const THINK_OPEN = '<think>\n'
const THINK_CLOSE = '\n</think>\n\n'

/**
 * The gateway's token estimate, used when the upstream reports no usage and for `max_tokens`:
 * one token per CJK (or other wide) character, one per four other characters.
 */
export class TokenCounter {
  private wide = 0
  private narrow = 0
  get tokens (): number { return this.wide + Math.ceil(this.narrow / 4) }

  add (text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c >= 0xdc00 && c <= 0xdfff) continue // low surrogate: counted with its high half
      if (c >= 0x2e80 && (c < 0xd800 || c > 0xdbff)) this.wide++
      else this.narrow++
    }
  }

  /** The longest prefix of `text` that keeps the count at or below `limit`; the count includes it. */
  fit (text: string, limit: number): string {
    let i = 0
    while (i < text.length) {
      const c = text.charCodeAt(i)
      const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length
      const wide = c >= 0x2e80 && !pair
      const next = wide ? this.wide + 1 + Math.ceil(this.narrow / 4) : this.wide + Math.ceil((this.narrow + 1) / 4)
      if (next > limit) break
      if (wide) this.wide++
      else this.narrow++
      i += pair ? 2 : 1
    }
    return text.slice(0, i)
  }
}

export function estimateTokens (text: string): number {
  const c = new TokenCounter()
  c.add(text)
  return c.tokens
}

export class CompletionTransformer {
  /** Events produced since the consumer last drained them. */
  events: OutEvent[] = []
  finishReason: FinishReason | null = null
  /** The answer is complete (or cut): stop reading the upstream. */
  ended = false
  /** The upstream itself said the answer is finished (as opposed to a cut by stop or max_tokens). */
  upstreamFinished = false
  responseId: string | undefined
  readonly searchResults: WebSearchInfo[] = []
  private usage: UsageCounts | undefined
  /** Everything emitted (for max_tokens and the estimate). */
  private readonly counter = new TokenCounter()
  /** Reasoning alone (for the estimate of reasoning tokens). */
  private readonly reasoningCounter = new TokenCounter()
  private summaryLength = 0
  private thinkOpen = false
  private stopHold = ''
  private readonly maxStop: number

  constructor (private readonly opts: TransformOptions) {
    this.maxStop = opts.stop.reduce((n, s) => Math.max(n, s.length), 0)
  }

  /** Feed one upstream frame. Throws an UpstreamError for an error frame. */
  push (frame: Frame): void {
    if (this.ended) return
    const f = readFrame(frame)
    if (f.kind === 'created') {
      this.responseId ??= f.responseId
      return
    }
    // The first response id seen is the answer; frames of a second, interleaved candidate are ignored.
    if (f.responseId !== undefined) {
      if (this.responseId === undefined) this.responseId = f.responseId
      else if (f.responseId !== this.responseId) return
    }
    if (f.kind === 'error') throw problemToError(f.problem!)
    if (f.usage) this.usage = f.usage
    switch (f.kind) {
      case 'search':
        this.searchResults.push(...f.results!)
        return
      case 'reasoning':
        if (f.text) this.reasoning(f.text)
        return
      case 'reasoning_snapshot':
        if (f.text.length > this.summaryLength) {
          this.reasoning(f.text.slice(this.summaryLength))
          this.summaryLength = f.text.length
        }
        return
      case 'answer':
        if (f.text) this.answer(f.text)
        if (!this.ended && f.finished) {
          this.upstreamFinished = true
          this.finish()
        }
        return
      default:
        // Bookkeeping, tool results and image generation are not part of a text completion.
    }
  }

  /** The upstream finished the answer: release held-back text and finish with `stop`. */
  private finish (): void {
    if (this.stopHold) {
      const held = this.stopHold
      this.stopHold = ''
      this.emitContent(held)
      if (this.ended) return
    }
    this.closeThink()
    this.finishReason = 'stop'
    this.ended = true
  }

  private closeThink (): void {
    if (this.thinkOpen) {
      this.thinkOpen = false
      this.events.push({ kind: 'content', text: THINK_CLOSE })
    }
  }

  private capped (text: string): string {
    const max = this.opts.maxTokens
    if (max === undefined) {
      this.counter.add(text)
      return text
    }
    const fitted = this.counter.fit(text, max)
    if (fitted.length < text.length) {
      this.finishReason = 'length'
      this.ended = true
    }
    return fitted
  }

  private reasoning (text: string): void {
    const mode = this.opts.thinkingOutput
    const t = this.capped(text)
    this.reasoningCounter.add(t)
    if (mode === 'hidden' || !t) {
      if (this.ended) this.closeThink()
      return
    }
    if (mode === 'reasoning_content') {
      this.events.push({ kind: 'reasoning', text: t })
    } else {
      // Open the block on its first piece; a cut by max_tokens on this very piece closes it after
      // the piece (once: the block was still open, so this piece goes inside it).
      let text = this.thinkOpen ? t : THINK_OPEN + t
      this.thinkOpen = !this.ended
      if (this.ended) text += THINK_CLOSE
      this.events.push({ kind: 'content', text })
    }
  }

  private answer (text: string): void {
    this.closeThink()
    if (this.maxStop === 0) {
      this.emitContent(text)
      return
    }
    const buf = this.stopHold + text
    let cut = -1
    for (const s of this.opts.stop) {
      const at = buf.indexOf(s)
      if (at !== -1 && (cut === -1 || at < cut)) cut = at
    }
    if (cut !== -1) {
      this.stopHold = ''
      this.emitContent(buf.slice(0, cut))
      if (!this.ended) {
        this.finishReason = 'stop'
        this.ended = true
      }
      return
    }
    // Hold back the longest tail that could still start a stop sequence.
    let hold = 0
    for (const s of this.opts.stop) {
      for (let k = Math.min(s.length - 1, buf.length); k > hold; k--) {
        if (buf.endsWith(s.slice(0, k))) { hold = k; break }
      }
    }
    this.stopHold = buf.slice(buf.length - hold)
    this.emitContent(buf.slice(0, buf.length - hold))
  }

  private emitContent (text: string): void {
    if (!text) return
    const t = this.capped(text)
    if (t) this.events.push({ kind: 'content', text: t })
  }

  /** Usage from the upstream's last cumulative frame, or the documented estimate. */
  usageFor (prompt: string): OpenAIUsage {
    const u = this.usage
    const promptTokens = u?.input ?? estimateTokens(prompt)
    let completion = u?.output ?? this.counter.tokens
    if (this.finishReason === 'length') completion = Math.min(completion, this.counter.tokens)
    const reasoning = Math.min(completion, u?.output !== undefined ? (u.reasoning ?? 0) : this.reasoningCounter.tokens)
    return {
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
      prompt_tokens_details: { cached_tokens: u?.cached ?? 0 },
      completion_tokens_details: { reasoning_tokens: reasoning },
    }
  }
}
