/**
 * What to keep warm, learned from traffic: the (model, chat type) pairs that chats were asked for
 * in the last `windowMs`, at most `maxKinds` of them (the least recently asked for goes first).
 */
import type { ChatType } from '../upstream/protocol.js'

export interface ChatKind { model: string; chatType: ChatType }

export class Demand {
  /** `model|chatType` → kind and when it was last asked for; insertion order = least recent first. */
  private readonly seen = new Map<string, ChatKind & { at: number }>()

  constructor (private readonly windowMs: number, private readonly maxKinds: number, private readonly now: () => number) {}

  /** A chat of this kind was asked for now. True when the kind was not in demand before. */
  note (model: string, chatType: ChatType): boolean {
    const k = `${model}|${chatType}`
    const had = this.seen.get(k)
    const fresh = had === undefined || had.at < this.now() - this.windowMs
    this.seen.delete(k)
    this.seen.set(k, { model, chatType, at: this.now() })
    while (this.seen.size > this.maxKinds) this.seen.delete(this.seen.keys().next().value!)
    return fresh
  }

  /** The kinds asked for within the window (older ones are forgotten). */
  active (): ChatKind[] {
    const cutoff = this.now() - this.windowMs
    for (const [k, v] of this.seen) if (v.at < cutoff) this.seen.delete(k)
    return [...this.seen.values()].map(({ model, chatType }) => ({ model, chatType }))
  }

  /** Whether this kind is in demand now. */
  has (model: string, chatType: string): boolean {
    const v = this.seen.get(`${model}|${chatType}`)
    return v !== undefined && v.at >= this.now() - this.windowMs
  }
}
