/**
 * Identity health as a pure state machine: one serialisable record per identity (breaker,
 * rate-limit, challenge, refused-credential and trial states), one `eligibility(now)` that every
 * caller asks, and one `applyOutcome` that every outcome goes through. No I/O, no clock of its own.
 *
 * - A breaker failure (upstream 5xx, reset, timeout) adds one to `failures`; a success takes one
 *   away. At `degradeAfter` (3) the identity is `degraded` and cools down for `degradedCooldownMs`;
 *   at `downAfter` (5) it is `down` for `downCooldownMs`.
 * - Once the cooldown has passed the identity is half-open: the next request that reaches it is
 *   its one trial. Success makes it `healthy`; failure doubles the cooldown (capped).
 * - While its trial runs, a `degraded` identity takes more requests only when nothing healthy is
 *   left; a `down` one takes none.
 * - Rate limits and anti-bot challenges have cooldowns of their own (the upstream's time, else a
 *   doubling backoff) and are not breaker failures.
 * - A credential the upstream refused (and a refresh could not fix) keeps the identity out of
 *   rotation until a token is obtained again, whatever its expiry says.
 */

export type IdentityState = 'healthy' | 'degraded' | 'down'

export interface HealthRecord {
  state: IdentityState
  failures: number
  /** Current breaker cooldown length (doubles after a failed trial). */
  cooldownMs: number
  /** End of the breaker cooldown (degraded/down). */
  cooldownUntil: number | undefined
  trialInFlight: boolean
  rateLimitedUntil: number | undefined
  rateLimits: number
  challengedUntil: number | undefined
  challenges: number
  /** The upstream refused this identity's credential and no refresh fixed it yet. */
  authRefused: boolean
  lastError: string | undefined
  lastErrorAt: number | undefined
  lastSuccess: number | undefined
  /** Switched off by the operator (dashboard); absent in records saved before that existed. */
  disabled?: boolean
  /**
   * When each part of the record last changed (ms, the store's clock): operator actions and what
   * was learned, so that merging two views after a shared-store outage keeps the newest of each
   * (`src/store/stamps.ts`). Absent in records saved before that existed.
   */
  stamps?: HealthStamps
}

/** See `HealthRecord.stamps`. A missing stamp counts as older than any other. */
export interface HealthStamps {
  /** The operator switched `disabled`. */
  disabled?: number
  /** The operator cleared every cooldown. */
  reset?: number
  /** The operator cleared the challenge cooldown (and the refused-credential flag). */
  challengeReset?: number
  /** Learned: rate-limit fields (`rateLimitedUntil`, `rateLimits`). */
  limit?: number
  /** Learned: breaker fields (`state`, `failures`, `cooldownMs`, `cooldownUntil`). */
  breaker?: number
  /** Learned: challenge fields (`challengedUntil`, `challenges`). */
  challenge?: number
  /** Learned: `authRefused`. */
  auth?: number
}

export interface PoolPolicy {
  degradeAfter: number
  downAfter: number
  degradedCooldownMs: number
  downCooldownMs: number
  maxCooldownMs: number
  /** First rate-limit cooldown when the upstream names no time; doubles per consecutive limit. */
  rateLimitBackoffMs: number
  /** First anti-bot cooldown; doubles per consecutive challenge. */
  challengeCooldownMs: number
}

export const DEFAULT_POLICY: PoolPolicy = {
  degradeAfter: 3,
  downAfter: 5,
  degradedCooldownMs: 2 * 60_000,
  downCooldownMs: 5 * 60_000,
  maxCooldownMs: 60 * 60_000,
  rateLimitBackoffMs: 60_000,
  challengeCooldownMs: 10 * 60_000,
}

/** How one request on an identity ended. `neutral`: says nothing about the identity (client left, our bad request, a gateway limit). */
export type Outcome =
  | { kind: 'success' }
  | { kind: 'failure'; error: string }
  | { kind: 'rate_limited'; error: string; retryAfterMs?: number }
  | { kind: 'challenge'; error: string }
  | { kind: 'auth_refused'; error: string }
  | { kind: 'neutral' }

/** What the identity's credential looks like right now (decided by the pool, which holds tokens). */
export interface CredentialState {
  /** A token can be obtained (a cookie, or e-mail and password). */
  canRefresh: boolean
  /** It holds a token that has not expired. */
  tokenValid: boolean
}

/** Why an identity cannot serve now, most specific first. */
export type BlockReason = 'disabled' | 'rate_limited' | 'challenge' | 'auth_refused' | 'breaker' | 'no_token'

export type Eligibility =
  /** Serves normally. */
  | { kind: 'ready' }
  /** Half-open: this request is its one trial. */
  | { kind: 'trial' }
  /** Degraded with its trial running: serves only when nothing else can. */
  | { kind: 'fallback' }
  | { kind: 'blocked'; reason: BlockReason; until: number | undefined }

export function newHealth (): HealthRecord {
  return {
    state: 'healthy',
    failures: 0,
    cooldownMs: 0,
    cooldownUntil: undefined,
    trialInFlight: false,
    rateLimitedUntil: undefined,
    rateLimits: 0,
    challengedUntil: undefined,
    challenges: 0,
    authRefused: false,
    lastError: undefined,
    lastErrorAt: undefined,
    lastSuccess: undefined,
  }
}

const future = (t: number | undefined, now: number): boolean => t !== undefined && t > now

/** The one place that decides whether an identity may serve a request at `now`. */
export function eligibility (h: HealthRecord, cred: CredentialState, now: number): Eligibility {
  // Switched off by the operator: nothing else matters until it is enabled again.
  if (h.disabled === true) return { kind: 'blocked', reason: 'disabled', until: undefined }
  // Cooldowns named by the upstream come first: they say when the identity comes back.
  if (future(h.rateLimitedUntil, now) || future(h.challengedUntil, now)) {
    const limited = future(h.rateLimitedUntil, now)
    const challenged = future(h.challengedUntil, now)
    // Both: it comes back when the later one ends; report the one that ends last.
    const reason = limited && (!challenged || h.rateLimitedUntil! >= h.challengedUntil!) ? 'rate_limited' : 'challenge'
    return { kind: 'blocked', reason, until: Math.max(limited ? h.rateLimitedUntil! : 0, challenged ? h.challengedUntil! : 0) }
  }
  if (!cred.canRefresh && !cred.tokenValid) return { kind: 'blocked', reason: 'no_token', until: undefined }
  // Refused even if its token has not expired: only a token fetch that works (the refresh timer,
  // POST /refresh-token, a restart with a new cookie) brings it back.
  if (h.authRefused) return { kind: 'blocked', reason: 'auth_refused', until: undefined }
  if (h.state === 'healthy') return { kind: 'ready' }
  if (future(h.cooldownUntil, now)) return { kind: 'blocked', reason: 'breaker', until: h.cooldownUntil }
  if (!h.trialInFlight) return { kind: 'trial' }
  if (h.state === 'degraded') return { kind: 'fallback' }
  return { kind: 'blocked', reason: 'breaker', until: undefined }
}

/** Whether the identity could take a request now (for counts and views). */
export function isAvailable (e: Eligibility): boolean {
  return e.kind !== 'blocked'
}

/** A state change worth logging and publishing. */
export interface Transition { from: IdentityState; to: IdentityState; why: string }

/** What `applyOutcome` did, for logs and events. */
export interface Applied {
  transition?: Transition
  /** A cooldown that started (rate limit, challenge, or a failed trial's doubled breaker cooldown). */
  cooldown?: { kind: 'rate_limited' | 'challenge' | 'breaker'; until: number }
}

function backoff (policy: PoolPolicy, base: number, streak: number): number {
  return Math.min(policy.maxCooldownMs, base * 2 ** (streak - 1))
}

/** Start a breaker cooldown of `ms` (0 clears it). */
function coolDown (h: HealthRecord, ms: number, now: number): void {
  h.cooldownMs = ms
  h.cooldownUntil = ms > 0 ? now + ms : undefined
}

function moveTo (h: HealthRecord, to: IdentityState, why: string, out: Applied): void {
  if (h.state === to) return
  out.transition = { from: h.state, to, why }
  h.state = to
}

function noteError (h: HealthRecord, error: string, now: number): void {
  h.lastError = error
  h.lastErrorAt = now
}

/** Apply how a leased attempt ended (mutates `h`). `trial` says whether the lease was the half-open trial. */
export function applyOutcome (h: HealthRecord, outcome: Outcome, trial: boolean, policy: PoolPolicy, now: number): Applied {
  const out: Applied = {}
  if (trial) h.trialInFlight = false
  switch (outcome.kind) {
    case 'neutral':
      return out
    case 'success':
      h.lastSuccess = now
      h.rateLimits = 0
      h.challenges = 0
      h.authRefused = false
      if (trial) {
        h.failures = 0
        coolDown(h, 0, now)
        moveTo(h, 'healthy', 'trial request succeeded', out)
      } else {
        h.failures = Math.max(0, h.failures - 1)
        if (h.state !== 'healthy' && h.failures < policy.degradeAfter) {
          coolDown(h, 0, now)
          moveTo(h, 'healthy', 'successes brought the failure count down', out)
        }
      }
      return out
    case 'rate_limited':
      h.rateLimits++
      h.rateLimitedUntil = now + (outcome.retryAfterMs ?? backoff(policy, policy.rateLimitBackoffMs, h.rateLimits))
      noteError(h, outcome.error, now)
      out.cooldown = { kind: 'rate_limited', until: h.rateLimitedUntil }
      return out
    case 'challenge':
      h.challenges++
      h.challengedUntil = now + backoff(policy, policy.challengeCooldownMs, h.challenges)
      noteError(h, outcome.error, now)
      out.cooldown = { kind: 'challenge', until: h.challengedUntil }
      return out
    case 'auth_refused':
    case 'failure':
      if (outcome.kind === 'auth_refused') h.authRefused = true
      h.failures++
      noteError(h, outcome.error, now)
      if (trial) {
        coolDown(h, Math.min(policy.maxCooldownMs, Math.max(h.cooldownMs, policy.degradedCooldownMs) * 2), now)
        if (h.failures >= policy.downAfter) moveTo(h, 'down', outcome.error, out)
        out.cooldown = { kind: 'breaker', until: h.cooldownUntil! }
      } else if (h.failures >= policy.downAfter && h.state !== 'down') {
        coolDown(h, policy.downCooldownMs, now)
        moveTo(h, 'down', outcome.error, out)
      } else if (h.failures >= policy.degradeAfter && h.state === 'healthy') {
        coolDown(h, policy.degradedCooldownMs, now)
        moveTo(h, 'degraded', outcome.error, out)
      }
      return out
  }
}

/** Which cooldowns an operator clears. `challenge`: after passing the check in a browser. `all`: also rate limits and the breaker. */
export function clearCooldowns (h: HealthRecord, which: 'challenge' | 'all'): Transition | undefined {
  h.challengedUntil = undefined
  h.challenges = 0
  h.authRefused = false
  if (which === 'challenge') return undefined
  h.rateLimitedUntil = undefined
  h.rateLimits = 0
  h.failures = 0
  h.cooldownMs = 0
  h.cooldownUntil = undefined
  if (h.state === 'healthy') return undefined
  const t: Transition = { from: h.state, to: 'healthy', why: 'cooldowns reset by an operator' }
  h.state = 'healthy'
  return t
}
