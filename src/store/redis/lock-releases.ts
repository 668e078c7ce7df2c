/**
 * Chat-lock releases that Redis did not get. A lock command that timed out may still land in Redis
 * later (a hung server runs what it had buffered once it goes on), and a release skipped while the
 * breaker was open leaves a lock taken before the outage in place: either way the chat would stay
 * busy until the lock's TTL. The releases are kept here (bounded) and sent when Redis answers again.
 */
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

/** Releases kept for Redis's return at most (the oldest are dropped: their locks run out by their TTL). */
export const MAX_PENDING_RELEASES = 1000
/** Releases sent in one round trip. */
const BATCH = 500

export class PendingReleases {
  /** Holder → chat of the locks this replica holds in Redis (taken there, not yet given back there). */
  private readonly held = new Map<string, string>()
  /** Target (`c:<chatId>`, `k:<conv key>`: that entry's chat, `p:<pointer key>`: that of the entry it names) and holder, by `target\nholder`. */
  private readonly pending = new Map<string, [target: string, holder: string]>()

  constructor (private readonly c: ScriptClient, private readonly keys: Keys) {}

  /** Waiting for Redis (for tests and metrics). */
  get size (): number { return this.pending.size }

  /** `holder` took the lock of `chatId` in Redis. */
  taken (chatId: string, holder: string): void {
    this.held.set(holder, chatId)
  }

  /** Redis released `holder`'s lock. */
  released (holder: string): void {
    this.held.delete(holder)
  }

  /** The release of `holder`'s lock could not be sent: kept if the lock is (or may be) in Redis. */
  unsent (chatId: string, holder: string): void {
    if (!this.held.has(holder)) return
    this.held.delete(holder)
    this.keep(`c:${chatId}`, holder)
  }

  /** A lock command failed (it may still land): `target` is `c:<chatId>`, `k:<conv key>` or `p:<pointer key>`. */
  keep (target: string, holder: string): void {
    const id = `${target}\n${holder}`
    this.pending.delete(id)
    this.pending.set(id, [target, holder])
    for (const k of this.pending.keys()) {
      if (this.pending.size <= MAX_PENDING_RELEASES) break
      this.pending.delete(k)
    }
  }

  /** Send them all, one round trip per batch (throws when Redis fails: the rest stay for the next try). */
  async send (): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending].slice(0, BATCH)
      await this.c.run('qgReleaseMany', this.keys.chatLock(''), this.keys.convPrefix, ...batch.flatMap(([, pair]) => pair))
      for (const [id] of batch) this.pending.delete(id)
    }
  }
}
