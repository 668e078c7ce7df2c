/**
 * Identity health shared through Redis (SCALE-OUT §A3.2): each replica reads a local mirror (a
 * `MemoryHealthStore`) on the hot path and writes every change through to Redis with a
 * compare-and-set script that publishes the new record in the same step; the other replicas take
 * it from the channel, and re-read everything every few seconds (pub/sub loses messages while
 * disconnected). `pickShared` runs the PICK script: one round-robin cursor and one half-open trial
 * for every replica. While the breaker is open everything stays local; the identities that changed
 * meanwhile (and, after Redis lost its data, every identity) are merged back on recovery.
 */
import { applyOutcome, clearCooldowns, eligibility, newHealth, type HealthRecord, type Outcome, type PoolPolicy, type Transition } from '../../health.js'
import type { Breaker } from '../breaker.js'
import { mergeDisabled, mergeLearned, mergeStamps, stampLearned, stampOperator } from '../stamps.js'
import { applyNote, changed, type Candidate, type HealthChange, type HealthNote, type IdentityHealthStore, type MemoryHealthStore, type Picked } from '../../store.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

export interface RedisHealthOptions {
  /** This replica's name: the owner of its trials, and how it knows its own messages. */
  owner: string
  /** `redis`: scripts read Redis's clock (production); `caller`: the `now` passed in (tests). */
  clock: 'redis' | 'caller'
  /** A trial not reported back (a crashed replica) frees its identity after this long. */
  probeTtlMs: number
  onError?: (err: Error) => void
}

type Mutate = (h: HealthRecord, now: number) => void


/**
 * Merge two views of one record (after an outage, or a restored state file): newest wins for the
 * operator's actions and, part by part, for what was learned (`src/store/stamps.ts`); the last
 * error is the later one.
 */
export function mergeHealth (into: HealthRecord, from: Readonly<HealthRecord>): void {
  mergeLearned(into, from)
  mergeDisabled(into, from)
  const stamps = mergeStamps(into.stamps, from.stamps)
  if (stamps) into.stamps = stamps
  if ((from.lastErrorAt ?? 0) > (into.lastErrorAt ?? 0)) {
    into.lastError = from.lastError
    into.lastErrorAt = from.lastErrorAt
  }
}

function parse (raw: string): HealthRecord {
  return { ...newHealth(), ...(JSON.parse(raw) as Partial<HealthRecord>), trialInFlight: false }
}

export class RedisHealthStore implements IdentityHealthStore {
  private readonly dirty = new Set<string>()
  private readonly pending = new Set<Promise<void>>()

  constructor (
    private readonly c: ScriptClient,
    private readonly keys: Keys,
    private readonly breaker: Breaker,
    private readonly local: MemoryHealthStore,
    private readonly policy: PoolPolicy,
    private readonly o: RedisHealthOptions,
  ) {}

  private nowArg (now: number): string {
    return this.o.clock === 'caller' ? String(now) : ''
  }

  pick (candidates: readonly Candidate[], exclude: ReadonlySet<string>, now: number): Picked {
    return this.local.pick(candidates, exclude, now)
  }

  async pickShared (candidates: readonly Candidate[], exclude: ReadonlySet<string>, now: number): Promise<Picked> {
    if (candidates.length === 0) return { ok: false, verdicts: [] }
    return await this.breaker.run(async () => {
      const json = JSON.stringify(candidates.map((c) => ({ id: c.id, r: c.cred.canRefresh, v: c.cred.tokenValid, x: exclude.has(c.id) })))
      const r = await this.c.run('qgPick', this.keys.health, this.keys.cursor, this.keys.probe, this.o.probeTtlMs, this.o.owner, this.nowArg(now), json) as [string, number] | null
      if (r) return { ok: true as const, id: r[0], trial: Number(r[1]) === 1 }
      const verdicts = candidates.filter((c) => !exclude.has(c.id)).map((c) => ({ id: c.id, e: eligibility(this.local.health(c.id), c.cred, now) }))
      return { ok: false as const, verdicts }
    }, () => this.local.pick(candidates, exclude, now))
  }

  record (id: string, outcome: Outcome, trial: boolean, now: number) {
    const before = { ...this.local.health(id) }
    const applied = this.local.record(id, outcome, trial, now)
    if (trial || changed(before, this.local.health(id))) {
      this.persist(id, (h, t) => {
        const b = { ...h }
        applyOutcome(h, outcome, trial, this.policy, t)
        stampLearned(b, h, t)
      }, now, trial)
    }
    return applied
  }

  reset (id: string, which: 'challenge' | 'all'): Transition | undefined {
    const t = this.local.reset(id, which)
    const what = which === 'all' ? 'reset' : 'challengeReset'
    // Stamped by Redis's clock when it answers (the caller's in tests), by this replica's meanwhile.
    this.persist(id, (h, at) => {
      clearCooldowns(h, which)
      stampOperator(h, what, at)
    }, this.local.health(id).stamps?.[what] ?? 0, false)
    return t
  }

  health (id: string): Readonly<HealthRecord> {
    return this.local.health(id)
  }

  put (id: string, record: HealthRecord): void {
    this.local.put(id, record)
    this.persist(id, (h) => { mergeHealth(h, record) }, 0, false)
  }

  annotate (id: string, note: HealthNote, now: number): void {
    this.local.annotate(id, note, now)
    this.persist(id, (h, t) => { applyNote(h, note, t) }, now, false)
  }

  setDisabled (id: string, disabled: boolean): void {
    this.local.setDisabled(id, disabled)
    this.persist(id, (h, at) => {
      h.disabled = disabled
      stampOperator(h, 'disabled', at)
    }, this.local.health(id).stamps?.disabled ?? 0, false)
  }

  snapshot (): Record<string, HealthRecord> {
    return this.local.snapshot()
  }

  subscribe (fn: (change: HealthChange) => void): () => void {
    return this.local.subscribe(fn)
  }

  /** A record another replica published. */
  onMessage (message: string): void {
    let m: { t?: string; id?: string; from?: string; rec?: string }
    try {
      m = JSON.parse(message) as typeof m
    } catch {
      return
    }
    if (m.t !== 'identity' || typeof m.id !== 'string' || typeof m.rec !== 'string' || m.from === this.o.owner) return
    this.take(m.id, parse(m.rec))
  }

  /**
   * Take a shared record into the mirror. One this replica changed and not yet wrote back (the
   * breaker open: another replica recovered first and published) is merged, not overwritten.
   */
  private take (id: string, rec: HealthRecord): void {
    if (this.dirty.has(id)) mergeHealth(rec, this.local.health(id))
    this.local.apply(id, rec, true)
  }

  /** Write a change through (later, on recovery, while the breaker is open). */
  private persist (id: string, mutate: Mutate, now: number, releaseProbe: boolean): void {
    if (this.breaker.open) {
      this.dirty.add(id)
      return
    }
    const p = this.write(id, mutate, now, releaseProbe).catch((err: unknown) => {
      this.dirty.add(id)
      this.breaker.fail(err)
      this.o.onError?.(err as Error)
    }).finally(() => { this.pending.delete(p) })
    this.pending.add(p)
  }

  /** Read, change and compare-and-set one record (retried when another replica wrote in between). */
  private async write (id: string, mutate: Mutate, now: number, releaseProbe: boolean): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const [raw, serverNow] = await this.c.run('qgRead', this.keys.health, id, this.nowArg(now)) as [string, number]
      const rec = raw ? parse(raw) : newHealth()
      mutate(rec, Number(serverNow))
      rec.trialInFlight = false
      const json = JSON.stringify(rec)
      const message = JSON.stringify({ t: 'identity', id, from: this.o.owner, rec: json })
      const ok = await this.c.run('qgWrite', this.keys.health, id, raw, json, releaseProbe ? this.keys.probe + id : '', this.keys.events, message, this.o.owner)
      if (Number(ok) === 1) {
        this.local.apply(id, rec, true)
        return
      }
    }
    throw new Error(`identity ${id}: too many concurrent writes`)
  }

  /** Wait for the writes in flight (tests, close). */
  async flush (): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  /**
   * After an outage or a Redis that lost its data (`everything`): merge what this replica learned
   * into the shared records, then read them all. Throws when Redis fails (the breaker stays open).
   */
  async recover (everything: boolean): Promise<void> {
    const ids = everything ? new Set([...this.local.ids(), ...this.dirty]) : new Set(this.dirty)
    for (const id of ids) {
      const mine = { ...this.local.health(id) }
      await this.write(id, (h) => { mergeHealth(h, mine) }, 0, false)
      this.dirty.delete(id)
    }
    await this.resync()
  }

  /** Read every shared record into the mirror. */
  async resync (): Promise<void> {
    const all = await this.c.redis.hgetall(this.keys.health)
    for (const [id, raw] of Object.entries(all)) this.take(id, parse(raw))
  }
}
