/**
 * The conversation map: which upstream chat continues a conversation, keyed by the hash of the
 * conversation as the client will send it next (`src/conversations/hash.ts`), plus a per-chat
 * generation lock (one generation per upstream chat at a time). Defined by asynchronous operations
 * so that a shared (Redis) store can implement the same interface; `MemoryConversationStore` is
 * the in-process one: bounded in entries and estimated bytes, entries live `ttlMs` after their put.
 *
 * No timers here: expiry happens on `get`, `put` and `sweep(now)` (the store plugin sweeps on an
 * interval). Whenever an entry leaves the map without being continued (it expired, was evicted, or
 * was abandoned by a failed continuation) subscribers hear of it: its chat can no longer be used.
 */

/** Where a conversation continues: the upstream chat and the answer to chain to. No prompt text. */
export interface ConversationRef {
  /** The pool identity that owns the chat; undefined for a client-mode caller's own account. */
  identity: string | undefined
  chatId: string
  /** The `response_id` of the last answer in the chat: the next turn's `parent_id`. */
  responseId: string
}

/** Why an entry left the map while its chat was still unused by a later turn. */
export type ConversationEndReason = 'expired' | 'evicted' | 'abandoned'

export interface ConversationEnded { key: string; ref: ConversationRef; reason: ConversationEndReason }

/** An entry with its key. */
export interface KeyedRef { key: string; ref: ConversationRef }

/** What `begin` found: the live entry, and whether its chat's lock is now `holder`'s (false: another request generates in it). */
export interface Begun extends KeyedRef { locked: boolean }

/** The end of a turn, written in one step (`commit`). */
export interface Commit {
  /** The entry the turn continued: removed when it still names `ref` (its chat moved on, one entry per chat). */
  moved?: KeyedRef
  /** What to remember, in order (the new entry, then the response pointer). */
  put: KeyedRef[]
  /** The chat lock to give back. */
  unlock?: { chatId: string; holder: string }
}

/** The same chat and parent (and account). */
export function sameRef (a: ConversationRef | undefined, b: ConversationRef): boolean {
  return a !== undefined && a.chatId === b.chatId && a.responseId === b.responseId && a.identity === b.identity
}

export interface ConversationStore {
  /** The live entry for `key`, or undefined (an expired one is dropped and announced). */
  get: (key: string, now: number) => Promise<ConversationRef | undefined>
  /** Remember `ref` under `key` for the TTL (replaces any entry under that key). */
  put: (key: string, ref: ConversationRef, now: number) => Promise<void>
  /**
   * Forget `key`. `abandoned`: its chat will not be continued (announced to subscribers); without a
   * reason the chat lives on under another key (a continuation moved it forward).
   */
  delete: (key: string, reason?: 'abandoned') => Promise<void>
  /** Take the generation lock of an upstream chat for `holder`; false while another holds it. */
  lock: (chatId: string, holder: string, now: number) => Promise<boolean>
  /** Give the lock back (only its holder can). */
  unlock: (chatId: string, holder: string) => Promise<void>
  /**
   * The start of a turn in one step: the live entry under `key` (an expired one is dropped and
   * announced) and, if there is one, its chat's lock taken for `holder`. `via: 'pointer'`: `key` is
   * a pointer entry's (`responseId` = the entry's key), followed in the same step.
   */
  begin: (key: string, holder: string, now: number, via?: 'pointer') => Promise<Begun | undefined>
  /** The end of a turn in one step: drop the moved-on entry, put the new ones, give the lock back. */
  commit: (c: Commit, now: number) => Promise<void>
  /** Whether a live entry still continues in `chatId` (a deletion sweep spares that chat). */
  holds: (chatId: string, now: number) => Promise<boolean>
  /** Drop and announce every expired entry; returns how many. */
  sweep: (now: number) => Promise<number>
  /** Called for every entry that ended unused; returns the unsubscribe function. */
  subscribe: (fn: (ended: ConversationEnded) => void) => () => void
}

export interface ConversationLimits {
  ttlMs: number
  maxEntries: number
  maxBytes: number
  /** A lock not given back (a crashed request) is free again after this long. */
  lockTtlMs?: number
}

interface Stored { ref: ConversationRef; expiresAt: number; bytes: number }

/** What one entry costs, estimated: its strings plus a fixed overhead for the map and objects. */
function sizeOf (key: string, ref: ConversationRef): number {
  return 160 + 2 * (key.length + ref.chatId.length + ref.responseId.length + (ref.identity?.length ?? 0))
}

export class MemoryConversationStore implements ConversationStore {
  /** In insertion order, which is expiry order (one TTL for all): the oldest first. */
  private readonly entries = new Map<string, Stored>()
  private readonly locks = new Map<string, { holder: string; until: number }>()
  private readonly listeners = new Set<(e: ConversationEnded) => void>()
  private bytes = 0

  constructor (private readonly limits: ConversationLimits) {}

  /** Entries held now (for tests and metrics). */
  get size (): number { return this.entries.size }

  async get (key: string, now: number): Promise<ConversationRef | undefined> {
    const s = this.entries.get(key)
    if (!s) return undefined
    if (s.expiresAt <= now) {
      this.drop(key, s, 'expired')
      return undefined
    }
    return s.ref
  }

  async put (key: string, ref: ConversationRef, now: number): Promise<void> {
    const old = this.entries.get(key)
    if (old) this.remove(key, old)
    const s: Stored = { ref: { ...ref }, expiresAt: now + this.limits.ttlMs, bytes: sizeOf(key, ref) }
    this.entries.set(key, s)
    this.bytes += s.bytes
    // An entry under the same key pointing at another chat leaves that chat unused.
    if (old && old.ref.chatId !== ref.chatId) this.announce(key, old.ref, 'evicted')
    await this.sweep(now)
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break
      if (k === key) continue
      this.drop(k, e, 'evicted')
    }
  }

  async begin (key: string, holder: string, now: number, via?: 'pointer'): Promise<Begun | undefined> {
    const found = via === 'pointer' ? await this.follow(key, now) : { key, ref: await this.get(key, now) }
    if (!found?.ref) return undefined
    return { key: found.key, ref: found.ref, locked: await this.lock(found.ref.chatId, holder, now) }
  }

  /** The live entry named by the pointer entry under `key` (whose `responseId` is that entry's key). */
  private async follow (key: string, now: number): Promise<KeyedRef | undefined> {
    const pointer = await this.get(key, now)
    const ref = pointer && await this.get(pointer.responseId, now)
    return ref && { key: pointer.responseId, ref }
  }

  async commit (c: Commit, now: number): Promise<void> {
    if (c.moved && sameRef(this.entries.get(c.moved.key)?.ref, c.moved.ref)) await this.delete(c.moved.key)
    for (const e of c.put) await this.put(e.key, e.ref, now)
    if (c.unlock) await this.unlock(c.unlock.chatId, c.unlock.holder)
  }

  async delete (key: string, reason?: 'abandoned'): Promise<void> {
    const s = this.entries.get(key)
    if (!s) return
    if (reason) this.drop(key, s, reason)
    else this.remove(key, s)
  }

  async lock (chatId: string, holder: string, now: number): Promise<boolean> {
    const l = this.locks.get(chatId)
    if (l && l.until > now && l.holder !== holder) return false
    this.locks.set(chatId, { holder, until: now + (this.limits.lockTtlMs ?? 30 * 60_000) })
    return true
  }

  async unlock (chatId: string, holder: string): Promise<void> {
    if (this.locks.get(chatId)?.holder === holder) this.locks.delete(chatId)
  }

  async holds (chatId: string, now: number): Promise<boolean> {
    for (const s of this.entries.values()) if (s.ref.chatId === chatId && s.expiresAt > now) return true
    return false
  }

  async sweep (now: number): Promise<number> {
    let n = 0
    for (const [k, s] of this.entries) {
      if (s.expiresAt > now) break
      this.drop(k, s, 'expired')
      n++
    }
    for (const [chatId, l] of this.locks) if (l.until <= now) this.locks.delete(chatId)
    return n
  }

  subscribe (fn: (ended: ConversationEnded) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Every live entry with its expiry (a shared store writes back what was remembered during an outage). */
  /** The generation locks held here and not run out: chat, holder and until when. */
  heldLocks (now: number): Array<{ chatId: string; holder: string; until: number }> {
    const out: Array<{ chatId: string; holder: string; until: number }> = []
    for (const [chatId, l] of this.locks) if (l.until > now) out.push({ chatId, holder: l.holder, until: l.until })
    return out
  }

  live (now: number): Array<{ key: string; ref: ConversationRef; expiresAt: number }> {
    const out: Array<{ key: string; ref: ConversationRef; expiresAt: number }> = []
    for (const [key, s] of this.entries) if (s.expiresAt > now) out.push({ key, ref: { ...s.ref }, expiresAt: s.expiresAt })
    return out
  }

  private remove (key: string, s: Stored): void {
    this.entries.delete(key)
    this.bytes -= s.bytes
  }

  private drop (key: string, s: Stored, reason: ConversationEndReason): void {
    this.remove(key, s)
    this.announce(key, s.ref, reason)
  }

  private announce (key: string, ref: ConversationRef, reason: ConversationEndReason): void {
    for (const fn of this.listeners) fn({ key, ref: { ...ref }, reason })
  }
}
