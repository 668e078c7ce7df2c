/**
 * The identity pool: upstream accounts, their tokens, their health, and which one serves the next
 * request. Framework-free; the `identity-pool` plugin owns one instance per app.
 *
 * Health (a circuit breaker per identity):
 * - A breaker failure (upstream 5xx, reset, timeout, a token that a refresh cannot fix) adds one to
 *   `failures`; a success takes one away. At `degradeAfter` (3) the identity becomes `degraded` and
 *   cools down for `degradedCooldownMs` (2 min); at `downAfter` (5) it is `down` for `downCooldownMs`
 *   (5 min).
 * - Once its cooldown has passed, an identity is half-open: the next request that reaches it in the
 *   rotation is its one trial. Success returns it to `healthy` (failures reset); failure sends it
 *   back with its cooldown doubled, capped at `maxCooldownMs`.
 * - While its trial is in flight, a `degraded` identity takes more requests only when no healthy
 *   identity is available; a `down` one takes none.
 * - Rate limits and anti-bot challenges are not breaker failures: they set their own cooldowns (the
 *   time the upstream names, else an exponential backoff) and are counted separately.
 */
import { createHash } from 'node:crypto'
import { UpstreamError } from './errors.js'
import { decodeJwt, mask } from './jwt.js'
import type { Credentials } from './upstream/protocol.js'
import { tokenFromCookie } from './upstream/protocol.js'

export type IdentityState = 'healthy' | 'degraded' | 'down'
export type IdentityKind = 'cookie' | 'token' | 'account'

export interface Identity {
  /** Stable id: from the account's user id in its JWT (`u-…`), the e-mail (`e-…`), else a cookie hash (`c-…`). Never a secret. */
  id: string
  /** Masked label for logs and /health. */
  label: string
  kind: IdentityKind
  cookie: string | undefined
  /** E-mail and password of a sign-in account (kept in memory only). */
  email: string | undefined
  password: string | undefined
  /** Outbound HTTP(S) proxy for this identity's upstream traffic. */
  proxyUrl: string | undefined
  token: string | undefined
  /** Token expiry (ms since epoch). */
  expiresAt: number | undefined
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
  inFlight: number
  lastError: string | undefined
  lastErrorAt: number | undefined
  lastSuccess: number | undefined
  /** Whether a new token can be obtained (a cookie, or e-mail and password). */
  canRefresh: boolean
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

/** How one request on an identity ended. `neutral`: says nothing about the identity (client left, our bad request). */
export type Outcome =
  | { kind: 'success' }
  | { kind: 'failure'; error: string }
  | { kind: 'rate_limited'; error: string; retryAfterMs?: number }
  | { kind: 'challenge'; error: string }
  | { kind: 'neutral' }

/** One identity handed out for one upstream attempt. */
export interface Lease { identity: Identity; trial: boolean }

export interface PoolCounts { total: number; healthy: number; degraded: number; down: number; initialized: boolean }

/** Counters for the metrics a later release exposes. */
export interface PoolCounters {
  acquired: number
  trials: number
  successes: number
  failures: number
  rateLimited: number
  challenges: number
  transitions: number
  refreshes: number
  refreshFailures: number
}

export interface TokenStatus { valid: boolean; expired: boolean; remainingTime: number; needsRefresh: boolean; reason: string }

/** Public view of one identity (/health with the API key). No secrets. */
export interface IdentityView {
  id: string
  label: string
  kind: IdentityKind
  state: IdentityState
  available: boolean
  failures: number
  inFlight: number
  tokenExpiresAt: string | null
  cooldownUntil: string | null
  rateLimitedUntil: string | null
  challengedUntil: string | null
  proxy: boolean
  lastError: string | null
  lastErrorAt: string | null
  lastSuccess: string | null
}

/** Tokens closer than this to expiry are refreshed. */
export const REFRESH_MARGIN_MS = 24 * 3_600_000

function hashId (prefix: string, value: string): string {
  return prefix + createHash('sha256').update(value).digest('hex').slice(0, 12)
}

export interface IdentitySpec {
  cookie?: string
  token?: string
  email?: string
  password?: string
  proxyUrl?: string
  /** Where it was configured, for the label (e.g. `cookie 2`). */
  source?: string
}

/** Build an identity from a cookie, a token, or e-mail and password. */
export function makeIdentity (spec: IdentitySpec): Identity {
  const { cookie, token, email, password, proxyUrl, source } = spec
  const jwt = token ?? (cookie ? tokenFromCookie(cookie) : undefined)
  const info = jwt ? decodeJwt(jwt) : undefined
  const kind: IdentityKind = email ? 'account' : cookie ? 'cookie' : 'token'
  const id = email
    ? hashId('e-', email.toLowerCase())
    : info?.id ? hashId('u-', info.id) : hashId('c-', cookie ?? jwt ?? '')
  const what = email ? `${source ?? 'account'} ${mask(email, 3)}` : source ?? (cookie ? 'cookie' : 'token')
  return {
    id,
    label: `${id} (${what})`,
    kind,
    cookie,
    email,
    password,
    proxyUrl,
    // A token pulled out of the cookie is not used until the upstream has confirmed it.
    token,
    expiresAt: token ? info?.expiresAt : undefined,
    state: 'healthy',
    failures: 0,
    cooldownMs: 0,
    cooldownUntil: undefined,
    trialInFlight: false,
    rateLimitedUntil: undefined,
    rateLimits: 0,
    challengedUntil: undefined,
    challenges: 0,
    inFlight: 0,
    lastError: undefined,
    lastErrorAt: undefined,
    lastSuccess: undefined,
    canRefresh: cookie !== undefined || (email !== undefined && password !== undefined),
  }
}

/**
 * An entry may name its own outbound proxy: `<cookie or email:password>@proxy=http://host:port`.
 * Returns the entry without the suffix and the proxy URL.
 */
export function splitProxy (entry: string): { value: string; proxyUrl?: string } {
  const m = /^(.*?)\s*@proxy=(https?:\/\/\S+)\s*$/s.exec(entry)
  return m ? { value: m[1]!.trim(), proxyUrl: m[2]! } : { value: entry.trim() }
}

/** `email:password` (the password may contain `:`). */
export function splitAccount (entry: string): { email: string; password: string } | undefined {
  const k = entry.indexOf(':')
  if (k <= 0 || k === entry.length - 1) return undefined
  return { email: entry.slice(0, k).trim(), password: entry.slice(k + 1) }
}

export function credentialsOf (i: Identity): Credentials {
  return { token: i.token, cookie: i.cookie }
}

interface Logger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

export interface PoolOptions {
  now: () => number
  policy?: Partial<PoolPolicy>
  log?: Logger
  /** Called after every change worth persisting. */
  onChange?: () => void
}

export class IdentityPool {
  readonly identities: Identity[]
  readonly policy: PoolPolicy
  readonly counters: PoolCounters = { acquired: 0, trials: 0, successes: 0, failures: 0, rateLimited: 0, challenges: 0, transitions: 0, refreshes: 0, refreshFailures: 0 }
  private cursor = 0
  initialized = false
  private readonly now: () => number

  constructor (identities: Identity[], private readonly opts: PoolOptions) {
    // Two entries for the same account collapse into one identity.
    const seen = new Map<string, Identity>()
    for (const i of identities) if (!seen.has(i.id)) seen.set(i.id, i)
    this.identities = [...seen.values()]
    this.policy = { ...DEFAULT_POLICY, ...opts.policy }
    this.now = opts.now
  }

  /** Can get a token, or holds one that has not expired. */
  private hasCredential (i: Identity): boolean {
    return i.canRefresh || this.tokenValid(i, this.now())
  }

  /** Rate-limit and challenge cooldowns, which apply whatever the breaker state. */
  private cooling (i: Identity, now: number): boolean {
    return (i.rateLimitedUntil !== undefined && i.rateLimitedUntil > now) || (i.challengedUntil !== undefined && i.challengedUntil > now)
  }

  private tokenValid (i: Identity, now: number): boolean {
    return i.token !== undefined && (i.expiresAt === undefined || i.expiresAt > now)
  }

  /** Whether the identity could serve a request right now (for counts and the model list). */
  available (i: Identity): boolean {
    const now = this.now()
    if (!this.hasCredential(i) || this.cooling(i, now)) return false
    if (i.state === 'healthy') return true
    return i.cooldownUntil === undefined || i.cooldownUntil <= now
  }

  /** A usable identity with a valid token, for calls that do not count (the model list). */
  peek (): Identity | undefined {
    const now = this.now()
    return this.identities.find((i) => i.state === 'healthy' && !this.cooling(i, now) && this.tokenValid(i, now))
  }

  /**
   * The next identity, round-robin, skipping `exclude`: healthy ones and half-open trials first,
   * then degraded ones whose trial is already running. Throws when nothing is eligible.
   */
  acquire (exclude: ReadonlySet<string> = new Set()): Lease {
    const now = this.now()
    const n = this.identities.length
    let fallback = -1
    for (let k = 0; k < n; k++) {
      const idx = (this.cursor + k) % n
      const i = this.identities[idx]!
      if (exclude.has(i.id) || !this.hasCredential(i) || this.cooling(i, now)) continue
      if (i.state === 'healthy') return this.lease(idx, false)
      if (i.cooldownUntil !== undefined && i.cooldownUntil > now) continue
      if (!i.trialInFlight) return this.lease(idx, true)
      if (i.state === 'degraded' && fallback === -1) fallback = idx
    }
    if (fallback !== -1) return this.lease(fallback, false)
    throw this.exhausted(exclude)
  }

  private lease (idx: number, trial: boolean): Lease {
    const identity = this.identities[idx]!
    this.cursor = (idx + 1) % this.identities.length
    identity.inFlight++
    this.counters.acquired++
    if (trial) {
      identity.trialInFlight = true
      this.counters.trials++
      this.opts.log?.info({ identity: identity.label, state: identity.state }, 'identity half-open: trial request')
    }
    return { identity, trial }
  }

  /** The error for "nothing is eligible", per DECISIONS "Error mapping". */
  exhausted (exclude: ReadonlySet<string> = new Set()): UpstreamError {
    const now = this.now()
    const candidates = this.identities.filter((i) => !exclude.has(i.id) && this.hasCredential(i))
    if (this.identities.length === 0) {
      return new UpstreamError('no_identity', 'No upstream account is configured: set COOKIE (see the README), or run `npm run demo` to try the gateway against the simulator')
    }
    // "Usable" leaves out identities the breaker is cooling down.
    const usable = candidates.filter((i) => i.state === 'healthy' || i.cooldownUntil === undefined || i.cooldownUntil <= now)
    const limited = usable.filter((i) => i.rateLimitedUntil !== undefined && i.rateLimitedUntil > now)
    if (limited.length > 0 && limited.length === usable.length) {
      const earliest = Math.min(...limited.map((i) => i.rateLimitedUntil!))
      return new UpstreamError('rate_limited', 'Every upstream account is rate limited', { retryAfterMs: earliest - now })
    }
    if (candidates.some((i) => i.challengedUntil !== undefined && i.challengedUntil > now)) {
      return new UpstreamError('challenge', 'Every usable upstream account is waiting on an anti-bot challenge; open chat.qwen.ai in a browser with these accounts, pass the check, then refresh their cookies')
    }
    return new UpstreamError('no_identity', 'No upstream account is usable right now: every configured account is cooling down, down, or without a token')
  }

  private transition (i: Identity, to: IdentityState, why: string): void {
    if (i.state === to) return
    const from = i.state
    i.state = to
    this.counters.transitions++
    const log = to === 'healthy' ? this.opts.log?.info : this.opts.log?.warn
    log?.call(this.opts.log, { identity: i.label, from, to, failures: i.failures, cooldownUntil: i.cooldownUntil ? new Date(i.cooldownUntil).toISOString() : undefined, why }, 'identity state changed')
  }

  /** Record how a leased attempt ended. */
  release (lease: Lease, outcome: Outcome): void {
    const i = lease.identity
    const now = this.now()
    i.inFlight = Math.max(0, i.inFlight - 1)
    if (lease.trial) i.trialInFlight = false
    const p = this.policy
    switch (outcome.kind) {
      case 'neutral':
        return this.changed()
      case 'success':
        this.counters.successes++
        i.lastSuccess = now
        i.rateLimits = 0
        i.challenges = 0
        if (lease.trial) {
          i.failures = 0
          this.coolDown(i, 0, now)
          this.transition(i, 'healthy', 'trial request succeeded')
        } else {
          i.failures = Math.max(0, i.failures - 1)
          if (i.state !== 'healthy' && i.failures < p.degradeAfter) {
            this.coolDown(i, 0, now)
            this.transition(i, 'healthy', 'successes brought the failure count down')
          }
        }
        return this.changed()
      case 'rate_limited': {
        this.counters.rateLimited++
        i.rateLimits++
        i.rateLimitedUntil = now + (outcome.retryAfterMs ?? this.backoff(p.rateLimitBackoffMs, i.rateLimits))
        this.noteError(i, outcome.error, now)
        this.opts.log?.warn({ identity: i.label, until: new Date(i.rateLimitedUntil).toISOString() }, 'identity rate limited')
        return this.changed()
      }
      case 'challenge':
        this.counters.challenges++
        i.challenges++
        i.challengedUntil = now + this.backoff(p.challengeCooldownMs, i.challenges)
        this.noteError(i, outcome.error, now)
        this.opts.log?.warn({ identity: i.label, until: new Date(i.challengedUntil).toISOString() }, 'identity hit an anti-bot challenge: refresh it in a browser')
        return this.changed()
      case 'failure':
        this.counters.failures++
        i.failures++
        this.noteError(i, outcome.error, now)
        if (lease.trial) {
          this.coolDown(i, Math.min(p.maxCooldownMs, Math.max(i.cooldownMs, p.degradedCooldownMs) * 2), now)
          if (i.failures >= p.downAfter) this.transition(i, 'down', outcome.error)
          this.opts.log?.warn({ identity: i.label, state: i.state, cooldownMs: i.cooldownMs }, 'identity trial request failed: cooldown doubled')
        } else if (i.failures >= p.downAfter && i.state !== 'down') {
          this.coolDown(i, p.downCooldownMs, now)
          this.transition(i, 'down', outcome.error)
        } else if (i.failures >= p.degradeAfter && i.state === 'healthy') {
          this.coolDown(i, p.degradedCooldownMs, now)
          this.transition(i, 'degraded', outcome.error)
        }
        return this.changed()
    }
  }

  /** Start a breaker cooldown of `ms` (0 clears it). */
  private coolDown (i: Identity, ms: number, now: number): void {
    i.cooldownMs = ms
    i.cooldownUntil = ms > 0 ? now + ms : undefined
  }

  /** `base` doubled for every repeat after the first, capped. */
  private backoff (base: number, streak: number): number {
    return Math.min(this.policy.maxCooldownMs, base * 2 ** (streak - 1))
  }

  private noteError (i: Identity, error: string, now: number): void {
    i.lastError = error
    i.lastErrorAt = now
  }

  private changed (): void {
    this.opts.onChange?.()
  }

  setToken (i: Identity, token: string, expiresAt: number | undefined): void {
    i.token = token
    i.expiresAt = expiresAt ?? decodeJwt(token)?.expiresAt
    this.counters.refreshes++
    this.changed()
  }

  counts (): PoolCounts {
    let healthy = 0
    let degraded = 0
    let down = 0
    for (const i of this.identities) {
      if (i.state === 'down') down++
      else if (i.state === 'degraded') degraded++
      else healthy++
    }
    return { total: this.identities.length, healthy, degraded, down, initialized: this.initialized }
  }

  /** Identities that can refresh and whose token is missing or expires within the margin. */
  needingRefresh (): Identity[] {
    const limit = this.now() + REFRESH_MARGIN_MS
    return this.identities.filter((i) => i.canRefresh && (i.token === undefined || i.expiresAt === undefined || i.expiresAt < limit))
  }

  /** Whether the identity's token must be fetched before it can be used. */
  needsTokenNow (i: Identity): boolean {
    return i.canRefresh && !this.tokenValid(i, this.now() + 60_000)
  }

  /** The token that expires first, described for /health. */
  tokenStatus (): TokenStatus {
    const now = this.now()
    let first: Identity | undefined
    for (const i of this.identities) {
      if (i.token === undefined) continue
      if (!first || (i.expiresAt ?? 0) < (first.expiresAt ?? 0)) first = i
    }
    if (!first) return { valid: false, expired: true, remainingTime: 0, needsRefresh: true, reason: 'No token found' }
    const remaining = Math.max(0, (first.expiresAt ?? 0) - now)
    if (remaining === 0) return { valid: false, expired: true, remainingTime: 0, needsRefresh: true, reason: 'Token has expired' }
    if (remaining < REFRESH_MARGIN_MS) return { valid: true, expired: false, remainingTime: remaining, needsRefresh: true, reason: 'Token expires within 24 hours' }
    return { valid: true, expired: false, remainingTime: remaining, needsRefresh: false, reason: 'Token is still valid' }
  }

  view (): IdentityView[] {
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString())
    const now = this.now()
    const future = (t: number | undefined) => (t !== undefined && t > now ? iso(t) : null)
    return this.identities.map((i) => ({
      id: i.id,
      label: i.label,
      kind: i.kind,
      state: i.state,
      available: this.available(i),
      failures: i.failures,
      inFlight: i.inFlight,
      tokenExpiresAt: iso(i.expiresAt),
      cooldownUntil: future(i.cooldownUntil),
      rateLimitedUntil: future(i.rateLimitedUntil),
      challengedUntil: future(i.challengedUntil),
      proxy: i.proxyUrl !== undefined,
      lastError: i.lastError ?? null,
      lastErrorAt: iso(i.lastErrorAt),
      lastSuccess: iso(i.lastSuccess),
    }))
  }
}
