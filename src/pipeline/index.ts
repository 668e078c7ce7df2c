/** The turn pipeline: decoder, stages, and the standard chain a text completion runs through. */
import { Pipeline } from './events.js'
import { MaxTokensCut } from './max-tokens.js'
import { reasoningPresentation, type ThinkingOutput } from './reasoning.js'
import { StopSequenceCut } from './stop.js'
import type { UsageAccounting } from './usage.js'

export { FrameDecoder } from './decode.js'
export { Pipeline, type FinishReason, type Stage, type TurnEvent } from './events.js'
export { MaxTokensCut } from './max-tokens.js'
export { HiddenReasoning, ThinkTags, THINK_CLOSE, THINK_OPEN, reasoningPresentation, type ThinkingOutput } from './reasoning.js'
export { StopSequenceCut } from './stop.js'
export { TokenCounter, estimateTokens } from './tokens.js'
export { UsageAccounting, type UsageTotals } from './usage.js'

export interface TextPipelineOptions {
  thinkingOutput: ThinkingOutput
  stop: string[]
  maxTokens: number | undefined
}

/**
 * The stages of a text completion, in order: stop sequences (answer text), max_tokens (reasoning and
 * answer), usage accounting (what went out), reasoning presentation. Stages a request does not need
 * are left out. New stages (tool calls, JSON extraction, citations) go in here.
 */
export function textPipeline (o: TextPipelineOptions, usage: UsageAccounting): Pipeline {
  return new Pipeline([
    o.stop.length > 0 ? new StopSequenceCut(o.stop) : undefined,
    o.maxTokens !== undefined ? new MaxTokensCut(o.maxTokens) : undefined,
    usage,
    reasoningPresentation(o.thinkingOutput),
  ])
}
