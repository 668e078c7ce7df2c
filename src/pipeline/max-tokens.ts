/**
 * `max_tokens`: reasoning and answer text together are cut at the limit (by the gateway's token
 * estimate) and the turn finishes with `length`.
 */
import type { Stage, TurnEvent } from './events.js'
import { TokenCounter } from './tokens.js'

export class MaxTokensCut implements Stage {
  private readonly counter = new TokenCounter()
  private done = false

  constructor (private readonly limit: number) {}

  push (ev: TurnEvent): TurnEvent[] {
    if (this.done) return []
    if (ev.kind === 'finish') this.done = true
    if (ev.kind !== 'content' && ev.kind !== 'reasoning') return [ev]
    const text = this.counter.fit(ev.text, this.limit)
    if (text.length === ev.text.length) return [ev]
    this.done = true
    const out: TurnEvent[] = text ? [{ kind: ev.kind, text }] : []
    out.push({ kind: 'finish', reason: 'length', upstream: false })
    return out
  }

  flush (): TurnEvent[] {
    return []
  }
}
