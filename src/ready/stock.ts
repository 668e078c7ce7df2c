/**
 * The ready-chat stock (issue #12): upstream chats created ahead of time, per identity, model and
 * chat type, each handed out at most once. Defined by asynchronous operations so that the shared
 * store (Redis) can hold one stock for every replica; `MemoryReadyChatStock` is the in-process one.
 */

/** One chat created ahead. No prompt text, no secret. */
export interface ReadyChat {
  chatId: string
  /** The pool identity that owns the chat. */
  identity: string
  /** When it was created (ms since epoch): older than `READY_CHAT_MAX_AGE_MS` is discarded. */
  createdAt: number
}

/** The key of one stock: what `chats/new` binds (identity, model, chat type — see PROTOCOL §1.5). */
export function stockKey (identity: string, model: string, chatType: string): string {
  return `${identity}|${model}|${chatType}`
}

export interface ReadyChatStock {
  /** Take the oldest chat of `key` (never the same chat twice, across replicas too); undefined when empty. */
  take: (key: string) => Promise<ReadyChat | undefined>
  /** Put a freshly created chat into the stock of `key`. */
  add: (key: string, chat: ReadyChat) => Promise<void>
  /** How many chats `key` holds now. */
  count: (key: string) => Promise<number>
  /** Remove and return every chat of `key`, or of every key when none is given (discarding, closing). */
  drain: (key?: string) => Promise<Array<{ key: string; chat: ReadyChat }>>
  /** Whether `chatId` is in some stock (a deletion sweep spares it). */
  holds: (chatId: string) => Promise<boolean>
  /**
   * A shared stock's own process-local part (chats stocked while the shared store was away), which
   * no other replica can hand out: removed and returned so that a closing replica deletes them.
   */
  drainLocal?: () => Promise<Array<{ key: string; chat: ReadyChat }>>
  /**
   * A shared stock's chats that were taken but never reached a taker (a take that timed out on the
   * replica yet ran in Redis later), once older than `olderThanMs` (default: the store's): removed
   * and returned, each to one replica, for the caller to delete upstream (the keeper's discard).
   */
  orphans?: (olderThanMs?: number) => Promise<ReadyChat[]>
}

export class MemoryReadyChatStock implements ReadyChatStock {
  private readonly stocks = new Map<string, ReadyChat[]>()

  async take (key: string): Promise<ReadyChat | undefined> {
    const list = this.stocks.get(key)
    const chat = list?.shift()
    if (list && list.length === 0) this.stocks.delete(key)
    return chat
  }

  async add (key: string, chat: ReadyChat): Promise<void> {
    let list = this.stocks.get(key)
    if (!list) {
      list = []
      this.stocks.set(key, list)
    }
    list.push(chat)
  }

  async count (key: string): Promise<number> {
    return this.stocks.get(key)?.length ?? 0
  }

  async drain (key?: string): Promise<Array<{ key: string; chat: ReadyChat }>> {
    const keys = key === undefined ? [...this.stocks.keys()] : [key]
    const out: Array<{ key: string; chat: ReadyChat }> = []
    for (const k of keys) {
      for (const chat of this.stocks.get(k) ?? []) out.push({ key: k, chat })
      this.stocks.delete(k)
    }
    return out
  }

  async holds (chatId: string): Promise<boolean> {
    for (const list of this.stocks.values()) if (list.some((c) => c.chatId === chatId)) return true
    return false
  }
}
