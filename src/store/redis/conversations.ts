/**
 * The conversation map and per-chat generation lock in Redis, so that turn 2 continues on any
 * replica the chat that turn 1 opened on another, and two replicas never generate in one chat at
 * once (`SET NX PX` with an owner-checked release). Values hold only ids (no prompt text); keys
 * are the conversation hashes, which include the caller (`ownerOf`). Expiry follows the caller's
 * clock like the memory store (a key's PX is a backstop); an expired entry is announced by the
 * replica whose compare-and-delete removed it, so exactly once. While the breaker is open the
 * local map serves (lookups of chats opened elsewhere miss: a new chat, history folded).
 */
import type { Breaker } from '../breaker.js'
import type { Begun, Commit, ConversationEnded, ConversationEndReason, ConversationLimits, ConversationRef, ConversationStore, MemoryConversationStore } from '../../conversations/store.js'
import type { Keys } from './keys.js'
import { PendingReleases } from './lock-releases.js'
import type { ScriptClient } from './scripts.js'

interface Value { key: string; ref: ConversationRef; exp: number }

/** How long a key outlives its expiry in Redis, so that a sweep still finds it to announce. */
const GRACE_MS = 10 * 60_000
const DEFAULT_LOCK_TTL_MS = 30 * 60_000

function stored (key: string, ref: ConversationRef, exp: number): Value {
  return { key, ref: { identity: ref.identity, chatId: ref.chatId, responseId: ref.responseId }, exp }
}

export class RedisConversationStore implements ConversationStore {
  private readonly listeners = new Set<(e: ConversationEnded) => void>()
  private readonly unsubscribeLocal: () => void
  private readonly releases: PendingReleases

  constructor (
    private readonly c: ScriptClient,
    private readonly keys: Keys,
    private readonly breaker: Breaker,
    private readonly local: MemoryConversationStore,
    private readonly limits: ConversationLimits,
  ) {
    this.unsubscribeLocal = local.subscribe((e) => { this.announce(e) })
    this.releases = new PendingReleases(c, keys)
  }

  async get (key: string, now: number): Promise<ConversationRef | undefined> {
    return await this.breaker.run(async () => {
      const raw = await this.c.redis.get(this.keys.conv(key))
      if (raw === null) return undefined
      const v = JSON.parse(raw) as Value
      if (v.exp > now) return v.ref
      await this.drop(raw, 'expired')
      return undefined
    }, async () => await this.local.get(key, now))
  }

  async put (key: string, ref: ConversationRef, now: number): Promise<void> {
    await this.breaker.run(async () => {
      const value = stored(key, ref, now + this.limits.ttlMs)
      const out = await this.c.run('qgConvPut', this.keys.conv(key), this.keys.convIndex, this.keys.convChats,
        key, JSON.stringify(value), value.exp, this.limits.ttlMs + GRACE_MS, ref.chatId, this.limits.maxEntries, this.keys.convPrefix) as string[]
      for (const raw of out) {
        const v = JSON.parse(raw) as Value
        this.announce({ key: v.key, ref: v.ref, reason: 'evicted' })
      }
    }, async () => { await this.local.put(key, ref, now) })
  }

  async begin (key: string, holder: string, now: number, via?: 'pointer'): Promise<Begun | undefined> {
    return await this.breaker.run(async () => {
      const ttl = this.limits.lockTtlMs ?? DEFAULT_LOCK_TTL_MS
      let out: string[]
      try {
        out = await this.c.run('qgConvBegin', this.keys.conv(key), this.keys.convIndex, key, now, this.keys.convPrefix, holder, ttl, this.keys.chatLock(''), via === 'pointer' ? '1' : '') as string[]
      } catch (err) {
        // It may still land: give back whatever lock it took once Redis answers again.
        this.releases.keep(`${via === 'pointer' ? 'p' : 'k'}:${key}`, holder)
        throw err
      }
      const [state, raw, ...gone] = out
      this.expired(gone)
      if (state === 'none') return undefined
      const v = JSON.parse(raw!) as Value
      if (state === 'locked') this.releases.taken(v.ref.chatId, holder)
      return { key: v.key, ref: v.ref, locked: state === 'locked' }
    }, async () => await this.local.begin(key, holder, now, via))
  }

  async commit (c: Commit, now: number): Promise<void> {
    const u = c.unlock
    await this.breaker.run(async () => {
      const args: Array<string | number> = []
      for (const e of c.put) {
        const v = stored(e.key, e.ref, now + this.limits.ttlMs)
        args.push(e.key, JSON.stringify(v), v.exp, this.limits.ttlMs + GRACE_MS, e.ref.chatId)
      }
      const m = c.moved
      const out = await this.c.run('qgConvCommit', this.keys.convIndex, this.keys.convChats, this.keys.convPrefix, this.limits.maxEntries,
        u ? this.keys.chatLock(u.chatId) : '', u?.holder ?? '', m?.key ?? '', m?.ref.chatId ?? '', m?.ref.responseId ?? '', m?.ref.identity ?? '',
        c.put.length, ...args) as string[]
      if (u) {
        this.releases.released(u.holder)
        // A lock taken during an outage is held here, not in Redis (or in both, after recovery).
        await this.local.unlock(u.chatId, u.holder)
      }
      for (const raw of out) {
        const v = JSON.parse(raw) as Value
        this.announce({ key: v.key, ref: v.ref, reason: 'evicted' })
      }
    }, async () => {
      await this.local.commit(c, now)
      if (u) this.releases.unsent(u.chatId, u.holder)
    })
  }

  async delete (key: string, reason?: 'abandoned'): Promise<void> {
    await this.breaker.run(async () => {
      const raw = await this.c.redis.get(this.keys.conv(key))
      if (raw === null) return
      if (reason) {
        await this.c.redis.zrem(this.keys.convChats, (JSON.parse(raw) as Value).ref.chatId)
        await this.drop(raw, reason)
      } else {
        await this.c.run('qgConvDrop', this.keys.conv(key), this.keys.convIndex, key, raw)
      }
    }, async () => { await this.local.delete(key, reason) })
  }

  async lock (chatId: string, holder: string, now: number): Promise<boolean> {
    return await this.breaker.run(async () => {
      const ttl = this.limits.lockTtlMs ?? DEFAULT_LOCK_TTL_MS
      let taken: boolean
      try {
        taken = Number(await this.c.run('qgLock', this.keys.chatLock(chatId), holder, ttl)) === 1
      } catch (err) {
        this.releases.keep(`c:${chatId}`, holder)
        throw err
      }
      if (taken) this.releases.taken(chatId, holder)
      return taken
    }, async () => await this.local.lock(chatId, holder, now))
  }

  async unlock (chatId: string, holder: string): Promise<void> {
    // Both sides: a lock taken during an outage is released locally, one taken in Redis there.
    await this.local.unlock(chatId, holder)
    await this.breaker.run(async () => {
      await this.c.run('qgRelease', this.keys.chatLock(chatId), holder)
      this.releases.released(holder)
    }, () => { this.releases.unsent(chatId, holder) })
  }

  /** Lock releases waiting for Redis to answer again (for tests and metrics). */
  get pendingReleases (): number { return this.releases.size }

  async holds (chatId: string, now: number): Promise<boolean> {
    const local = await this.local.holds(chatId, now)
    return local || await this.breaker.run(async () => {
      const score = await this.c.redis.zscore(this.keys.convChats, chatId)
      return score !== null && Number(score) > now
    }, () => false)
  }

  async sweep (now: number): Promise<number> {
    let n = await this.local.sweep(now)
    n += await this.breaker.run(async () => {
      const due = await this.c.redis.zrangebyscore(this.keys.convIndex, '-inf', now, 'LIMIT', 0, 500)
      let dropped = 0
      for (const key of due) {
        const raw = await this.c.redis.get(this.keys.conv(key))
        if (raw === null) {
          await this.c.redis.zrem(this.keys.convIndex, key)
          continue
        }
        if ((JSON.parse(raw) as Value).exp <= now && await this.drop(raw, 'expired')) dropped++
      }
      await this.c.redis.zremrangebyscore(this.keys.convChats, '-inf', now)
      return dropped
    }, () => 0)
    return n
  }

  subscribe (fn: (ended: ConversationEnded) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  close (): void {
    this.unsubscribeLocal()
  }

  /**
   * After an outage: the conversations remembered locally meanwhile go to Redis (unless Redis has
   * a newer entry under the key), so that the other replicas continue them too. Throws when Redis fails.
   */
  async recover (now: number): Promise<void> {
    await this.releases.send()
    // The chats generating on this replica's local locks stay locked for the other replicas too,
    // until their holders give them back (through Redis now).
    for (const l of this.local.heldLocks(now)) {
      if (await this.c.redis.set(this.keys.chatLock(l.chatId), l.holder, 'PX', l.until - now, 'NX') === 'OK') this.releases.taken(l.chatId, l.holder)
    }
    for (const e of this.local.live(now)) {
      const value: Value = { key: e.key, ref: e.ref, exp: e.expiresAt }
      const px = e.expiresAt - now + GRACE_MS
      const written = await this.c.redis.set(this.keys.conv(e.key), JSON.stringify(value), 'PX', px, 'NX') === 'OK'
      if (written) {
        await this.c.redis.zadd(this.keys.convIndex, e.expiresAt, e.key)
        await this.c.redis.zadd(this.keys.convChats, 'GT', e.expiresAt, e.ref.chatId)
      }
      // From now on Redis alone holds it: a stale local copy would later expire on its own and
      // announce its chat as unused while the conversation goes on (and chat deletion would take it).
      await this.local.delete(e.key)
    }
  }

  /** Remove an entry if it is still `raw`; announce it when this call removed it. */
  private async drop (raw: string, reason: ConversationEndReason): Promise<boolean> {
    const v = JSON.parse(raw) as Value
    const removed = Number(await this.c.run('qgConvDrop', this.keys.conv(v.key), this.keys.convIndex, v.key, raw)) === 1
    if (removed) this.announce({ key: v.key, ref: v.ref, reason })
    return removed
  }

  /** Announce the entries a script found expired (and removed). */
  private expired (gone: string[]): void {
    for (const g of gone) {
      const v = JSON.parse(g) as Value
      this.announce({ key: v.key, ref: v.ref, reason: 'expired' })
    }
  }

  private announce (e: ConversationEnded): void {
    for (const fn of this.listeners) fn(e)
  }
}
