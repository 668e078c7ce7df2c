/**
 * Which upstream chats may be deleted, and when. Framework-free; the chat-deletion plugin feeds it
 * from the event surface (`chat.created` with its request id, then the request's end) and other
 * features tell it what they still hold:
 * - a conversation entry keeps its chat (`keep`) until it expires or is evicted (`release`);
 * - a running task (a video being generated) holds its chat (`taskStarted` / `taskEnded`);
 * - a chat whose media the client got as upstream URLs is deleted only after the media delay
 *   (`linked`);
 * - any other holder (the ready-chat stock, a conversation store) can register a predicate
 *   (`retainedBy`).
 * Everything else is one-shot: deleted as soon as the request that created it is over.
 */

/** Where a chat stands once its request is over. */
export interface Tracked {
  identity: string
  requestId: string
  /** The request that created it is over. */
  over: boolean
  /** A conversation entry continues it. */
  kept: boolean
  /** Tasks running in it (video generation). */
  tasks: number
  /** The client got upstream URLs of its media: not before this time (ms). */
  notBefore?: number
}

export interface RetentionOptions {
  /** Queue a deletion (the deleter). */
  remove: (chatId: string, identity: string) => void
  now: () => number
  mediaDelayMs: number
  /** Most chats tracked at once (the oldest are forgotten first, never deleted blindly). */
  maxTracked?: number
}

export class ChatRetention {
  private readonly chats = new Map<string, Tracked>()
  private readonly byRequest = new Map<string, Set<string>>()
  private readonly holders = new Set<(chatId: string) => boolean>()
  private readonly delayed = new Map<string, NodeJS.Timeout>()
  private readonly maxTracked: number

  constructor (private readonly o: RetentionOptions) {
    this.maxTracked = o.maxTracked ?? 10_000
  }

  get size (): number {
    return this.chats.size
  }

  /** A chat was created by `identity` for request `requestId`. */
  created (chatId: string, identity: string, requestId: string): void {
    if (this.chats.size >= this.maxTracked) this.forget(this.chats.keys().next().value!)
    this.chats.set(chatId, { identity, requestId, over: false, kept: false, tasks: 0 })
    let set = this.byRequest.get(requestId)
    if (!set) this.byRequest.set(requestId, set = new Set())
    set.add(chatId)
  }

  /** The request is over (its response ended): its chats that nothing holds are deleted. */
  requestOver (requestId: string): void {
    const set = this.byRequest.get(requestId)
    if (!set) return
    this.byRequest.delete(requestId)
    for (const chatId of set) {
      const c = this.chats.get(chatId)
      if (!c) continue
      c.over = true
      this.decide(chatId, c)
    }
  }

  /** A conversation entry will continue this chat: it is not deleted until `release`. */
  keep (chatId: string): void {
    const c = this.chats.get(chatId)
    if (c) c.kept = true
  }

  /** The conversation entry is gone (expired, evicted, replaced): the chat is deleted unless something else holds it. */
  release (chatId: string): void {
    const c = this.chats.get(chatId)
    if (!c) return
    c.kept = false
    this.decide(chatId, c)
  }

  /** The client got this chat's media as upstream URLs: keep it for the media delay (or `delayMs`) from now. */
  linked (chatId: string, delayMs = this.o.mediaDelayMs): void {
    const c = this.chats.get(chatId)
    if (c) c.notBefore = Math.max(c.notBefore ?? 0, this.o.now() + delayMs)
  }

  /** A task (video generation) runs in this chat: it is never deleted while one does. */
  taskStarted (chatId: string): void {
    const c = this.chats.get(chatId)
    if (c) c.tasks++
  }

  taskEnded (chatId: string): void {
    const c = this.chats.get(chatId)
    if (!c || c.tasks === 0) return
    c.tasks--
    this.decide(chatId, c)
  }

  /** Another holder: chats for which `fn` answers true are neither deleted nor swept. Returns the unregister function. */
  retainedBy (fn: (chatId: string) => boolean): () => void {
    this.holders.add(fn)
    return () => { this.holders.delete(fn) }
  }

  /** Whether anything still holds the chat (the scheduled sweep spares it). */
  held (chatId: string): boolean {
    const c = this.chats.get(chatId)
    if (c && (c.kept || c.tasks > 0 || !c.over)) return true
    for (const fn of this.holders) if (fn(chatId)) return true
    return false
  }

  /** Stop the media-delay timers (the chats they wait for stay). Returns how many were waiting. */
  close (): number {
    for (const t of this.delayed.values()) clearTimeout(t)
    const n = this.delayed.size
    this.delayed.clear()
    return n
  }

  private decide (chatId: string, c: Tracked): void {
    if (!c.over || c.kept || c.tasks > 0 || this.delayed.has(chatId)) return
    for (const fn of this.holders) if (fn(chatId)) return
    const wait = (c.notBefore ?? 0) - this.o.now()
    if (wait > 0) {
      const timer = setTimeout(() => {
        this.delayed.delete(chatId)
        const now = this.chats.get(chatId)
        if (now) this.decide(chatId, now)
      }, wait)
      timer.unref()
      this.delayed.set(chatId, timer)
      return
    }
    this.forget(chatId)
    this.o.remove(chatId, c.identity)
  }

  private forget (chatId: string): void {
    const c = this.chats.get(chatId)
    if (!c) return
    this.chats.delete(chatId)
    const t = this.delayed.get(chatId)
    if (t) clearTimeout(t)
    this.delayed.delete(chatId)
    const set = this.byRequest.get(c.requestId)
    set?.delete(chatId)
    if (set?.size === 0) this.byRequest.delete(c.requestId)
  }
}
