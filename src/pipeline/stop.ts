/**
 * Stop sequences: answer text is cut before the earliest stop sequence and the turn finishes with
 * `stop`. A tail that could still be the start of a stop sequence is held back until the next piece
 * decides it, or released when the upstream finishes. Reasoning is never cut by stop sequences.
 */
import type { Stage, TurnEvent } from './events.js'

export class StopSequenceCut implements Stage {
  private readonly stops: string[]
  private held = ''
  private done = false

  constructor (stops: string[]) {
    this.stops = stops.filter((s) => s.length > 0)
  }

  push (ev: TurnEvent): TurnEvent[] {
    if (this.done) return []
    if (ev.kind === 'content') return this.content(ev.text)
    if (ev.kind !== 'finish') return [ev]
    this.done = true
    const out = this.flush()
    out.push(ev)
    return out
  }

  flush (): TurnEvent[] {
    if (!this.held) return []
    const text = this.held
    this.held = ''
    return [{ kind: 'content', text }]
  }

  private content (text: string): TurnEvent[] {
    const buf = this.held + text
    let cut = -1
    let matched = ''
    for (const s of this.stops) {
      const at = buf.indexOf(s)
      if (at !== -1 && (cut === -1 || at < cut)) { cut = at; matched = s }
    }
    if (cut !== -1) {
      this.held = ''
      this.done = true
      const out: TurnEvent[] = cut > 0 ? [{ kind: 'content', text: buf.slice(0, cut) }] : []
      out.push({ kind: 'finish', reason: 'stop', upstream: false, stopSequence: matched })
      return out
    }
    // Hold back the longest tail that could still start a stop sequence.
    let hold = 0
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > hold; k--) {
        if (buf.endsWith(s.slice(0, k))) { hold = k; break }
      }
    }
    this.held = buf.slice(buf.length - hold)
    return hold < buf.length ? [{ kind: 'content', text: buf.slice(0, buf.length - hold) }] : []
  }
}
