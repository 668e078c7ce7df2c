/**
 * How reasoning reaches the client (`THINKING_OUTPUT`): as its own channel (`reasoning_content`,
 * no stage), dropped (`hidden`), or folded into the answer text inside one `<think>` block per run of
 * reasoning (`think_tags`). Place it after the cuts and usage accounting: hidden reasoning still
 * counts toward max_tokens and usage.
 */
import type { Stage, TurnEvent } from './events.js'

export type ThinkingOutput = 'reasoning_content' | 'think_tags' | 'hidden'

export const THINK_OPEN = '<think>\n'
export const THINK_CLOSE = '\n</think>\n\n'

export class HiddenReasoning implements Stage {
  push (ev: TurnEvent): TurnEvent[] {
    return ev.kind === 'reasoning' ? [] : [ev]
  }

  flush (): TurnEvent[] {
    return []
  }
}

export class ThinkTags implements Stage {
  private open = false

  push (ev: TurnEvent): TurnEvent[] {
    if (ev.kind === 'reasoning') {
      const text = this.open ? ev.text : THINK_OPEN + ev.text
      this.open = true
      return [{ kind: 'content', text }]
    }
    if (this.open && (ev.kind === 'phase' || ev.kind === 'content' || ev.kind === 'finish')) {
      this.open = false
      return [{ kind: 'content', text: THINK_CLOSE }, ev]
    }
    return [ev]
  }

  flush (): TurnEvent[] {
    if (!this.open) return []
    this.open = false
    return [{ kind: 'content', text: THINK_CLOSE }]
  }
}

/** The stage for a THINKING_OUTPUT mode (none for `reasoning_content`). */
export function reasoningPresentation (mode: ThinkingOutput): Stage | undefined {
  if (mode === 'hidden') return new HiddenReasoning()
  if (mode === 'think_tags') return new ThinkTags()
  return undefined
}
