/** The turn pipeline: decoder, stages, and the standard chain a text completion runs through. */
import type { OutputPlan } from '../tools/json-output.js'
import type { ToolPlan } from '../tools/plan.js'
import { Pipeline } from './events.js'
import { JsonOutputStage } from './json-output.js'
import { MaxTokensCut } from './max-tokens.js'
import { reasoningPresentation, type ThinkingOutput } from './reasoning.js'
import { StopSequenceCut } from './stop.js'
import { ToolCallStage } from './tool-calls.js'
import type { UsageAccounting } from './usage.js'

export { FrameDecoder } from './decode.js'
export { Pipeline, type FinishReason, type Stage, type TurnEvent } from './events.js'
export { MaxTokensCut } from './max-tokens.js'
export { HiddenReasoning, ThinkTags, THINK_CLOSE, THINK_OPEN, reasoningPresentation, type ThinkingOutput } from './reasoning.js'
export { StopSequenceCut } from './stop.js'
export { JsonOutputStage } from './json-output.js'
export { MAX_CALL_CHARS, ToolCallStage } from './tool-calls.js'
export { TokenCounter, estimateTokens } from './tokens.js'
export { UsageAccounting, type UsageTotals } from './usage.js'

export interface TextPipelineOptions {
  thinkingOutput: ThinkingOutput
  stop: string[]
  maxTokens: number | undefined
  /** Tool calling (`undefined`: no tools, or `tool_choice: "none"`). */
  tools?: ToolPlan | undefined
  /** A JSON `response_format`. */
  output?: OutputPlan | undefined
  /** Most answer characters a stage may hold back (the JSON output stage holds the whole answer). */
  maxHeldChars?: number | undefined
}

/**
 * The stages of a text completion, in order: tool calls and JSON output (they read the raw answer
 * text, so stop sequences never cut a call's arguments), stop sequences (answer text), max_tokens
 * (reasoning and answer), usage accounting (what went out), reasoning presentation. Stages a request
 * does not need are left out. New stages (citations) go in here.
 */
export function textPipeline (o: TextPipelineOptions, usage: UsageAccounting): Pipeline {
  return new Pipeline([
    o.tools ? new ToolCallStage(o.tools) : undefined,
    o.output ? new JsonOutputStage(o.output, o.maxHeldChars) : undefined,
    o.stop.length > 0 ? new StopSequenceCut(o.stop) : undefined,
    o.maxTokens !== undefined ? new MaxTokensCut(o.maxTokens) : undefined,
    usage,
    reasoningPresentation(o.thinkingOutput),
  ])
}
