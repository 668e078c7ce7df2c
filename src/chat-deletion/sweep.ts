/**
 * The scheduled sweep (`CHAT_DELETION=scheduled`, the original project's chat deletion): every
 * `CHAT_DELETION_INTERVAL_MS`, list each identity's chats and queue those older than
 * `CHAT_DELETION_MAX_AGE_MS` for deletion, except the chats something still holds (a live
 * conversation entry, a running task, the ready-chat stock).
 */
import type { UpstreamChat } from '../upstream/protocol.js'

/** Pages listed per identity and sweep at most (the upstream lists 20 or so a page). */
export const MAX_SWEEP_PAGES = 50

export interface SweepOptions {
  /** The identities to sweep (those with a token). */
  identities: () => string[]
  /** One page of an identity's chats, newest first. */
  list: (identity: string, page: number, signal: AbortSignal) => Promise<UpstreamChat[]>
  held: (chatId: string) => boolean
  /** Chats kept elsewhere (the ready-chat stock, which may be shared by replicas): asked only for old chats nothing else holds. */
  spared?: (chatId: string) => Promise<boolean>
  remove: (chatId: string, identity: string) => void
  now: () => number
  maxAgeMs: number
  /** An identity's list failed (logged); the sweep goes on with the others. */
  onError: (identity: string, err: unknown) => void
}

export interface SweepResult { listed: number; queued: number; failedIdentities: number }

/** One sweep over every identity. */
export async function sweep (o: SweepOptions, signal: AbortSignal): Promise<SweepResult> {
  const r: SweepResult = { listed: 0, queued: 0, failedIdentities: 0 }
  const cutoff = o.now() - o.maxAgeMs
  for (const identity of o.identities()) {
    if (signal.aborted) break
    let old: string[]
    try {
      old = await oldChats(o, identity, cutoff, signal, r)
    } catch (err) {
      r.failedIdentities++
      o.onError(identity, err)
      continue
    }
    for (const chatId of old) {
      o.remove(chatId, identity)
      r.queued++
    }
  }
  return r
}

/** Every chat of `identity` created before `cutoff` (ms) that nothing holds. Listed first, deleted after, so pages do not shift under the walk. */
async function oldChats (o: SweepOptions, identity: string, cutoff: number, signal: AbortSignal, r: SweepResult): Promise<string[]> {
  const old: string[] = []
  const seen = new Set<string>()
  for (let page = 1; page <= MAX_SWEEP_PAGES; page++) {
    const chats = await o.list(identity, page, signal)
    if (chats.length === 0) break
    let fresh = 0
    for (const c of chats) {
      if (seen.has(c.id)) continue
      seen.add(c.id)
      fresh++
      r.listed++
      // Times in ms (the protocol module converts); a chat without one is never swept.
      const created = c.createdAt ?? c.updatedAt
      if (created === undefined || created >= cutoff) continue
      if (!o.held(c.id) && !(await o.spared?.(c.id))) old.push(c.id)
    }
    // A page of chats already seen: the list ends here (a site that ignores `page`).
    if (fresh === 0) break
  }
  return old
}

/** Runs `sweep` every `intervalMs` (one at a time) until `close()`. */
export class SweepSchedule {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<SweepResult> | undefined
  private readonly abort = new AbortController()

  constructor (private readonly o: SweepOptions, private readonly intervalMs: number, private readonly onDone: (r: SweepResult) => void) {}

  start (): void {
    this.timer = setInterval(() => { void this.run() }, this.intervalMs)
    this.timer.unref()
  }

  /** One sweep now (a sweep already running is joined, not doubled). */
  run (): Promise<SweepResult> {
    this.running ??= sweep(this.o, this.abort.signal).then((r) => {
      this.onDone(r)
      return r
    }).finally(() => { this.running = undefined })
    return this.running
  }

  close (): void {
    clearInterval(this.timer)
    this.abort.abort()
  }
}
