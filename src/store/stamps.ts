/**
 * When each part of an identity's health record last changed (`HealthRecord.stamps`), so that two
 * views of one record (a replica's, learned while the shared store was away, and the shared one)
 * merge to the newest of each: an operator's reset clears what was learned before it on either
 * side and keeps what was learned after it; the newer `disabled` switch wins. Pure functions.
 */
import type { HealthRecord, HealthStamps } from '../health.js'

type Group = 'limit' | 'breaker' | 'challenge' | 'auth'

/** The learned parts of a record, and which operator reset clears each. */
const GROUPS: ReadonlyArray<{ g: Group; fields: ReadonlyArray<keyof HealthRecord>; clearedBy: 'all' | 'challenge' }> = [
  { g: 'limit', fields: ['rateLimitedUntil', 'rateLimits'], clearedBy: 'all' },
  { g: 'breaker', fields: ['state', 'failures', 'cooldownMs', 'cooldownUntil'], clearedBy: 'all' },
  { g: 'challenge', fields: ['challengedUntil', 'challenges'], clearedBy: 'challenge' },
  { g: 'auth', fields: ['authRefused'], clearedBy: 'challenge' },
]

function clear (h: HealthRecord, g: Group): void {
  switch (g) {
    case 'limit':
      h.rateLimitedUntil = undefined
      h.rateLimits = 0
      return
    case 'breaker':
      h.state = 'healthy'
      h.failures = 0
      h.cooldownMs = 0
      h.cooldownUntil = undefined
      return
    case 'challenge':
      h.challengedUntil = undefined
      h.challenges = 0
      return
    case 'auth':
      h.authRefused = false
  }
}

/** Stamp, at `now`, every learned part of `after` that differs from `before`. */
export function stampLearned (before: Readonly<HealthRecord>, after: HealthRecord, now: number): void {
  for (const { g, fields } of GROUPS) {
    if (fields.some((f) => before[f] !== after[f])) after.stamps = { ...after.stamps, [g]: now }
  }
}

/** Stamp an operator action at `now` (never moving a stamp back). */
export function stampOperator (h: HealthRecord, what: 'disabled' | 'reset' | 'challengeReset', now: number): void {
  h.stamps = { ...h.stamps, [what]: Math.max(now, h.stamps?.[what] ?? 0) }
}

const at = (s: HealthStamps | undefined, k: keyof HealthStamps): number => s?.[k] ?? 0

/**
 * Clear, in `h`, what it learned before the newest operator reset of `h` and `other` (a part
 * without a stamp counts as learned before it). Nothing changes when neither side was reset.
 */
export function dropStale (h: HealthRecord, other: Readonly<HealthRecord>): void {
  const all = Math.max(at(h.stamps, 'reset'), at(other.stamps, 'reset'))
  const challenge = Math.max(all, at(h.stamps, 'challengeReset'), at(other.stamps, 'challengeReset'))
  for (const { g, clearedBy } of GROUPS) {
    const cutoff = clearedBy === 'all' ? all : challenge
    if (cutoff > 0 && at(h.stamps, g) < cutoff) clear(h, g)
  }
}

const RANK = { healthy: 0, degraded: 1, down: 2 } as const

/** Both sides learned a part at the same time (or neither stamped it): keep the worse of each field. */
function combine (into: HealthRecord, from: Readonly<HealthRecord>, g: Group): void {
  const later = (f: 'rateLimitedUntil' | 'cooldownUntil' | 'challengedUntil'): void => {
    if ((from[f] ?? 0) > (into[f] ?? 0)) into[f] = from[f]
  }
  switch (g) {
    case 'limit':
      later('rateLimitedUntil')
      into.rateLimits = Math.max(into.rateLimits, from.rateLimits)
      return
    case 'breaker':
      later('cooldownUntil')
      if (RANK[from.state] > RANK[into.state]) into.state = from.state
      into.failures = Math.max(into.failures, from.failures)
      into.cooldownMs = Math.max(into.cooldownMs, from.cooldownMs)
      return
    case 'challenge':
      later('challengedUntil')
      into.challenges = Math.max(into.challenges, from.challenges)
      return
    case 'auth':
      into.authRefused = into.authRefused || from.authRefused
  }
}

/**
 * Merge what `from` learned into `into`, part by part: what either side learned before the newest
 * operator reset is dropped; then the side that learned a part later wins it whole (a rate limit
 * learned after a reset replaces one learned before it, whichever replica merges first); a part
 * both learned at the same stamp (or neither stamped) keeps the later deadline and higher counters.
 */
export function mergeLearned (into: HealthRecord, from: Readonly<HealthRecord>): void {
  const other: HealthRecord = { ...from }
  dropStale(other, into)
  dropStale(into, from)
  for (const { g, fields } of GROUPS) {
    const a = at(into.stamps, g)
    const b = at(other.stamps, g)
    if (b > a) for (const f of fields) (into as unknown as Record<string, unknown>)[f] = other[f]
    else if (b === a) combine(into, other, g)
  }
}

/** The newer operator switch wins; with no stamp on either side, `from` only fills a gap. */
export function mergeDisabled (into: HealthRecord, from: Readonly<HealthRecord>): void {
  const a = into.stamps?.disabled
  const b = from.stamps?.disabled
  if (b !== undefined && (a === undefined || b > a)) into.disabled = from.disabled
  else if (a === undefined && b === undefined && into.disabled === undefined) into.disabled = from.disabled
}

/** Every stamp of either side, the later one where both have it. */
export function mergeStamps (a: HealthStamps | undefined, b: HealthStamps | undefined): HealthStamps | undefined {
  if (!a && !b) return undefined
  const out: HealthStamps = { ...a }
  for (const [k, v] of Object.entries(b ?? {}) as Array<[keyof HealthStamps, number]>) out[k] = Math.max(v, out[k] ?? 0)
  return out
}
