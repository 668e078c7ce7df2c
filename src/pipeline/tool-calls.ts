/**
 * The tool-call stage: answer text → content and validated tool calls, the same for streamed and
 * collected answers (it is the one parser). Text before the first call streams as content as soon
 * as it cannot be part of a marker; nothing after the first call is content. Each candidate the
 * scanner finds is checked against the plan: a valid one becomes a `tool_call` event (`call_…` id,
 * index in order; only the first when parallel calls are off); an invalid one is returned as text
 * under `auto`.
 *
 * While a call is forced (`required`, a named tool) text is held back and dropped (a forced call
 * carries no content); an answer that ends without a valid call throws ModelOutputError, which the
 * runner answers with one corrective retry. The finish reason becomes `tool_calls` when calls went out.
 */
import { newCallId, readCall } from '../tools/calls.js'
import { ModelOutputError } from '../tools/errors.js'
import { forced, type ToolPlan } from '../tools/plan.js'
import { CallScanner, type Scanned } from '../tools/scanner.js'
import type { Stage, TurnEvent } from './events.js'

/** Largest call object the scanner buffers (characters). */
export const MAX_CALL_CHARS = 1024 * 1024

export class ToolCallStage implements Stage {
  private readonly scanner: CallScanner
  private readonly forced: boolean
  private calls = 0
  private readonly problems: string[] = []

  constructor (private readonly plan: ToolPlan, private readonly newId: () => string = newCallId) {
    this.scanner = new CallScanner(plan.markers, MAX_CALL_CHARS)
    this.forced = forced(plan)
  }

  push (ev: TurnEvent): TurnEvent[] {
    if (ev.kind === 'content') return this.read(this.scanner.push(ev.text))
    if (ev.kind !== 'finish') return [ev]
    const out = this.read(this.scanner.end())
    if (this.calls > 0) {
      out.push({ ...ev, reason: 'tool_calls' })
    } else if (this.forced && ev.reason === 'stop') {
      throw new ModelOutputError('tool_call', this.problems.length > 0 ? this.problems : ['the answer contained no tool call'])
    } else {
      out.push(ev)
    }
    return out
  }

  flush (): TurnEvent[] {
    return this.read(this.scanner.end())
  }

  private read (items: Scanned[]): TurnEvent[] {
    const out: TurnEvent[] = []
    for (const item of items) {
      if (item.kind === 'text') {
        if (this.calls === 0 && !this.forced) out.push({ kind: 'content', text: item.text })
        continue
      }
      if (this.calls > 0 && !this.plan.parallel) continue
      const r = readCall(item.json, this.plan)
      if ('call' in r) {
        out.push({ kind: 'tool_call', call: { index: this.calls++, id: this.newId(), name: r.call.name, arguments: r.call.arguments } })
      } else {
        this.problems.push(r.problem)
        if (this.calls === 0 && !this.forced) out.push({ kind: 'content', text: item.raw })
      }
    }
    return out
  }
}
