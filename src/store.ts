/**
 * `qwenStore`: the gateway's cross-request state, defined by operations so that a shared (Redis)
 * implementation can stand behind the same interface later. Today it holds identity health; later
 * issues add their operations (conversations, uploads, jobs, ready chats, limits).
 *
 * `MemoryStore` is the in-process implementation.
 */
import { MemoryConversationStore, type ConversationLimits, type ConversationStore } from './conversations/store.js'
import { MemoryAccountStore, type AccountStore } from './admin/accounts.js'
import { MemoryRequestLog, type RequestLog } from './admin/request-log.js'
import { MemoryReadyChatStock, type ReadyChatStock } from './ready/stock.js'
import type { SharedCounters, SharedTokens } from './store/tokens.js'
import type { SharedValues } from './media/upload-cache.js'
import type { SharedVideoJobs } from './media/video-jobs.js'
import { stampLearned, stampOperator } from './store/stamps.js'
import { applyOutcome, clearCooldowns, eligibility, newHealth, type Applied, type CredentialState, type Eligibility, type HealthRecord, type Outcome, type PoolPolicy, type Transition } from './health.js'

/** One candidate for `pick`, in the pool's order. */
export interface Candidate { id: string; cred: CredentialState }

export type Picked =
  | { ok: true; id: string; trial: boolean }
  /** Nothing can serve: every candidate's eligibility, for the caller to explain why. */
  | { ok: false; verdicts: Array<{ id: string; e: Eligibility }> }

/** What a token fetch adds to a record: the credential was refused (or works again), or an error. */
export interface HealthNote { authRefused?: boolean; error?: string }

/** A change of an identity's health (after an outcome, a cooldown reset, or a restore). */
export interface HealthChange { id: string; applied: Applied; health: Readonly<HealthRecord> }

export interface IdentityHealthStore {
  /**
   * The next identity, round-robin from a cursor the store keeps, skipping `exclude`: ready ones
   * and half-open trials first, then degraded ones whose trial is already running. Marks a trial
   * as in flight.
   */
  pick: (candidates: readonly Candidate[], exclude: ReadonlySet<string>, now: number) => Picked
  /**
   * `pick` across replicas (the shared store: one cursor, one trial for all), when the store has
   * one; the pool prefers it. Falls back to the local `pick` when the shared side is unreachable.
   */
  pickShared?: (candidates: readonly Candidate[], exclude: ReadonlySet<string>, now: number) => Promise<Picked>
  /** Record how a leased attempt ended. */
  record: (id: string, outcome: Outcome, trial: boolean, now: number) => Applied
  /** Operator reset: clear the challenge cooldown, or every cooldown. */
  reset: (id: string, which: 'challenge' | 'all') => Transition | undefined
  /** The current record (a fresh healthy one for an unknown id). */
  health: (id: string) => Readonly<HealthRecord>
  /** Replace a record (restoring saved state at start-up; no trial is in flight then). */
  put: (id: string, record: HealthRecord) => void
  /** Note what a token fetch found (a refused credential, or the last error), without an outcome. */
  annotate: (id: string, note: HealthNote, now: number) => void
  /** Operator switch (dashboard): a disabled identity serves nothing until enabled again. */
  setDisabled: (id: string, disabled: boolean) => void
  /** Every record, for persistence and presentation. */
  snapshot: () => Record<string, HealthRecord>
  /** Called after every change; returns the unsubscribe function. */
  subscribe: (fn: (change: HealthChange) => void) => () => void
}

/** The store's surface as the rest of the gateway sees it (`qwenStore`). */
export interface QwenStore {
  identities: IdentityHealthStore
  /** The conversation map and the per-chat generation lock (`src/conversations/store.ts`). */
  conversations: ConversationStore
  /** Upstream chats created ahead, handed out once (`src/ready/stock.ts`). */
  readyChats: ReadyChatStock
  /** The last requests, for the dashboard (`src/admin/request-log.ts`). */
  requests: RequestLog
  /** Accounts added at runtime, sealed (`src/admin/accounts.ts`). */
  accounts: AccountStore
  /** Tokens shared between replicas, sealed, with a refresh lease (`src/store/tokens.ts`); only a shared store has them. */
  tokens?: SharedTokens
  /** Per-key request counters shared between replicas; only a shared store has them. */
  counters?: SharedCounters
  /** The upload cache shared between replicas (`src/media/upload-cache.ts`); only a shared store has it. */
  uploads?: SharedValues
  /** `/v1/videos` jobs shared between replicas, sealed (`src/media/video-jobs.ts`); only a shared store has them. */
  videoJobs?: SharedVideoJobs
}

export type { ConversationEnded, ConversationRef, ConversationStore } from './conversations/store.js'

/** The conversation bounds when none are given (the options' defaults). */
const CONVERSATION_DEFAULTS: ConversationLimits = { ttlMs: 3_600_000, maxEntries: 10_000, maxBytes: 8 * 1024 * 1024 }

/** What a token fetch's note changes on a record, stamped as learned at `at`. */
export function applyNote (h: HealthRecord, note: HealthNote, at: number): void {
  const before = { ...h }
  if (note.authRefused !== undefined) h.authRefused = note.authRefused
  if (note.error !== undefined) {
    h.lastError = note.error
    h.lastErrorAt = at
  }
  stampLearned(before, h, at)
}

/** Whether anything worth saving changed: a success on a healthy identity only moves `lastSuccess`. */
export function changed (a: HealthRecord, b: HealthRecord): boolean {
  return a.state !== b.state || a.failures !== b.failures || a.cooldownUntil !== b.cooldownUntil ||
    a.rateLimitedUntil !== b.rateLimitedUntil || a.challengedUntil !== b.challengedUntil || a.authRefused !== b.authRefused ||
    a.rateLimits !== b.rateLimits || a.challenges !== b.challenges || a.lastErrorAt !== b.lastErrorAt
}

export class MemoryHealthStore implements IdentityHealthStore {
  private readonly records = new Map<string, HealthRecord>()
  private readonly listeners = new Set<(c: HealthChange) => void>()
  private cursor = 0

  /** `now`: the clock operator actions are stamped by (`HealthRecord.stamps`). */
  constructor (private readonly policy: PoolPolicy, private readonly now: () => number = Date.now) {}

  private get (id: string): HealthRecord {
    let h = this.records.get(id)
    if (!h) {
      h = newHealth()
      this.records.set(id, h)
    }
    return h
  }

  pick (candidates: readonly Candidate[], exclude: ReadonlySet<string>, now: number): Picked {
    const n = candidates.length
    let fallback = -1
    const verdicts: Array<{ id: string; e: Eligibility }> = []
    for (let k = 0; k < n; k++) {
      const idx = (this.cursor + k) % n
      const c = candidates[idx]!
      if (exclude.has(c.id)) continue
      const h = this.get(c.id)
      const e = eligibility(h, c.cred, now)
      if (e.kind === 'ready') return this.take(idx, n, c.id, false)
      if (e.kind === 'trial') {
        h.trialInFlight = true
        return this.take(idx, n, c.id, true)
      }
      if (e.kind === 'fallback' && fallback === -1) fallback = idx
      verdicts.push({ id: c.id, e })
    }
    if (fallback !== -1) return this.take(fallback, n, candidates[fallback]!.id, false)
    return { ok: false, verdicts }
  }

  private take (idx: number, n: number, id: string, trial: boolean): Picked {
    this.cursor = (idx + 1) % n
    return { ok: true, id, trial }
  }

  record (id: string, outcome: Outcome, trial: boolean, now: number): Applied {
    const h = this.get(id)
    const before = { ...h }
    const applied = applyOutcome(h, outcome, trial, this.policy, now)
    stampLearned(before, h, now)
    if (changed(before, h)) this.emit(id, applied, h)
    return applied
  }

  reset (id: string, which: 'challenge' | 'all'): Transition | undefined {
    const h = this.get(id)
    const transition = clearCooldowns(h, which)
    stampOperator(h, which === 'all' ? 'reset' : 'challengeReset', this.now())
    this.emit(id, transition ? { transition } : {}, h)
    return transition
  }

  health (id: string): Readonly<HealthRecord> {
    return this.get(id)
  }

  put (id: string, record: HealthRecord): void {
    this.records.set(id, { ...record, trialInFlight: false })
  }

  annotate (id: string, note: HealthNote, now: number): void {
    const h = this.get(id)
    const before = { ...h }
    applyNote(h, note, now)
    if (changed(before, h)) this.emit(id, {}, h)
  }

  setDisabled (id: string, disabled: boolean): void {
    const h = this.get(id)
    // Stamped even when it changes nothing here: the operator's word is the newest (shared store).
    stampOperator(h, 'disabled', this.now())
    const same = (h.disabled ?? false) === disabled
    h.disabled = disabled
    if (!same) this.emit(id, {}, h)
  }

  snapshot (): Record<string, HealthRecord> {
    const out: Record<string, HealthRecord> = {}
    for (const [id, h] of this.records) out[id] = { ...h }
    return out
  }

  /**
   * Take a record learned elsewhere (another replica, the shared store), keeping this process's
   * trial flag; subscribers hear of it (without a transition) when `announce` and it changed.
   */
  apply (id: string, record: HealthRecord, announce: boolean): void {
    const old = this.records.get(id)
    const next = { ...newHealth(), ...record, trialInFlight: old?.trialInFlight ?? false }
    this.records.set(id, next)
    if (announce && (!old || changed(old, next) || old.disabled !== next.disabled)) this.emit(id, {}, next)
  }

  /** Ids with a record here. */
  ids (): string[] {
    return [...this.records.keys()]
  }

  subscribe (fn: (change: HealthChange) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  private emit (id: string, applied: Applied, health: HealthRecord): void {
    for (const fn of this.listeners) fn({ id, applied, health })
  }
}

/** The in-memory store: one process, the default. */
export class MemoryStore implements QwenStore {
  readonly identities: IdentityHealthStore
  readonly conversations: ConversationStore
  readonly readyChats: ReadyChatStock = new MemoryReadyChatStock()
  readonly requests: RequestLog = new MemoryRequestLog()
  readonly accounts: AccountStore = new MemoryAccountStore()

  constructor (policy: PoolPolicy, conversations: ConversationLimits = CONVERSATION_DEFAULTS) {
    this.identities = new MemoryHealthStore(policy)
    this.conversations = new MemoryConversationStore(conversations)
  }
}
