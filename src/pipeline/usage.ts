/**
 * Usage accounting: the upstream's last cumulative counts when it sends them, else the gateway's
 * estimate of what went out (reasoning included, whether shown or not). Passes every event on.
 */
import type { UsageCounts } from '../upstream/protocol.js'
import type { Stage, TurnEvent } from './events.js'
import { TokenCounter, estimateTokens } from './tokens.js'

export interface UsageTotals {
  prompt: number
  completion: number
  reasoning: number
  cached: number
}

export class UsageAccounting implements Stage {
  private upstream: UsageCounts | undefined
  /** Everything that went out (after the cuts). */
  private readonly all = new TokenCounter()
  private readonly reasoningOnly = new TokenCounter()
  private cut = false

  push (ev: TurnEvent): TurnEvent[] {
    switch (ev.kind) {
      case 'content':
        this.all.add(ev.text)
        break
      case 'reasoning':
        this.all.add(ev.text)
        this.reasoningOnly.add(ev.text)
        break
      case 'tool_call':
        this.all.add(ev.call.name + ev.call.arguments)
        break
      case 'usage':
        this.upstream = ev.usage
        break
      case 'finish':
        this.cut = ev.reason === 'length'
        break
      default:
    }
    return [ev]
  }

  flush (): TurnEvent[] {
    return []
  }

  /** The totals for a turn whose prompt was `prompt` (estimated when the upstream sent no counts). */
  totals (prompt: string): UsageTotals {
    const u = this.upstream
    let completion = u?.output ?? this.all.tokens
    // Cut by max_tokens: the upstream counted what it generated, the client got less.
    if (this.cut) completion = Math.min(completion, this.all.tokens)
    return {
      prompt: u?.input ?? estimateTokens(prompt),
      completion,
      reasoning: Math.min(completion, u?.output !== undefined ? (u.reasoning ?? 0) : this.reasoningOnly.tokens),
      cached: u?.cached ?? 0,
    }
  }
}
