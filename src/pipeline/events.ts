/**
 * The internal event stream of one turn, and the stages that transform it.
 *
 * The frame decoder turns upstream frames into {@link TurnEvent}s; a {@link Pipeline} of small, pure
 * {@link Stage}s rewrites them (tool-call parsing, JSON extraction, reasoning presentation,
 * stop/max_tokens cuts, usage accounting, and later citations); a face's responder renders what comes out.
 */
import type { ToolCallOut } from '../faces/face.js'
import type { UsageCounts, WebSearchInfo } from '../upstream/protocol.js'

/** `tool_calls`: the answer ended with one or more tool calls (set by the tool-call stage). */
export type FinishReason = 'stop' | 'length' | 'tool_calls'

export type TurnEvent =
  /** Reasoning (thinking) text, incremental. */
  | { kind: 'reasoning'; text: string }
  /** Answer text, incremental. */
  | { kind: 'content'; text: string }
  /** A complete, validated tool call (the tool-call stage turns answer text into these). */
  | { kind: 'tool_call'; call: ToolCallOut }
  /**
   * The answer phase starts (again): reasoning is over for now. Sent before the first answer text
   * and the first after each run of reasoning, even when a stage holds that text back.
   */
  | { kind: 'phase'; phase: 'answer' }
  /** Web search results (never answer text). */
  | { kind: 'search'; results: WebSearchInfo[] }
  /** The upstream's cumulative token counts (the last one seen is final). */
  | { kind: 'usage'; usage: UsageCounts }
  /**
   * The answer is complete. `upstream` when the upstream said so; false when a stage cut it (a stop
   * sequence, max_tokens). Nothing follows a finish event.
   */
  | { kind: 'finish'; reason: FinishReason; upstream: boolean; stopSequence?: string }

/**
 * One step of the pipeline. `push` takes one event and returns the events it lets through, rewrites
 * or releases (possibly none, possibly several); `flush` returns whatever it still holds when the
 * input ends without a finish event. A stage passes on kinds it does not know, unchanged and in order.
 */
export interface Stage {
  push (ev: TurnEvent): TurnEvent[]
  flush (): TurnEvent[]
}

/** Stages run in order: each stage's output is the next one's input. */
export class Pipeline implements Stage {
  private readonly stages: Stage[]

  constructor (stages: Array<Stage | undefined>) {
    this.stages = stages.filter((s): s is Stage => s !== undefined)
  }

  push (ev: TurnEvent): TurnEvent[] {
    return this.run([ev])
  }

  flush (): TurnEvent[] {
    // What a stage releases at the end still goes through the stages after it, then they flush.
    let out: TurnEvent[] = []
    for (const stage of this.stages) {
      const next: TurnEvent[] = []
      for (const e of out) {
        for (const o of stage.push(e)) next.push(o)
      }
      for (const o of stage.flush()) next.push(o)
      out = next
    }
    return out
  }

  private run (events: TurnEvent[]): TurnEvent[] {
    let cur = events
    for (let i = 0; i < this.stages.length && cur.length > 0; i++) {
      const stage = this.stages[i]!
      if (cur.length === 1) {
        cur = stage.push(cur[0]!)
        continue
      }
      const next: TurnEvent[] = []
      for (const e of cur) {
        for (const o of stage.push(e)) next.push(o)
      }
      cur = next
    }
    return cur
  }
}
