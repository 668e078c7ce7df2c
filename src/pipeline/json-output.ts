/**
 * The JSON output stage (`response_format` `json_object`/`json_schema`): answer text is held until
 * the answer ends, then the JSON is extracted (code fences and prose stripped), checked, and sent as
 * one content event. An answer without valid JSON throws ModelOutputError (the runner retries once
 * with a corrective note). When the answer is a tool call instead (tools and a JSON format in one
 * request), the held text goes out unchanged. Reasoning and other events pass at once.
 */
import { UpstreamError } from '../errors.js'
import { ModelOutputError } from '../tools/errors.js'
import { checkOutput, type OutputPlan } from '../tools/json-output.js'
import type { Stage, TurnEvent } from './events.js'

export class JsonOutputStage implements Stage {
  private held = ''
  private called = false

  constructor (private readonly plan: OutputPlan, private readonly maxChars = Infinity) {}

  push (ev: TurnEvent): TurnEvent[] {
    if (ev.kind === 'content') {
      this.held += ev.text
      if (this.held.length > this.maxChars) {
        throw new UpstreamError('limit', `The JSON answer exceeded the gateway's ${this.maxChars}-character buffer`)
      }
      return []
    }
    if (ev.kind === 'tool_call') this.called = true
    if (ev.kind !== 'finish') return [ev]
    if (this.called || ev.reason !== 'stop') return [...this.flush(), ev]
    const r = checkOutput(this.plan, this.held)
    if ('problems' in r) throw new ModelOutputError('json', r.problems)
    this.held = ''
    return [{ kind: 'content', text: r.json }, ev]
  }

  flush (): TurnEvent[] {
    const text = this.held
    this.held = ''
    return text ? [{ kind: 'content', text }] : []
  }
}
