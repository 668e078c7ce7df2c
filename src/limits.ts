/**
 * Per-key limits, framework-free: a fixed-window request counter behind `@fastify/rate-limit`'s
 * store interface (so a shared store can replace it later), and concurrency leases. Both are kept
 * per app instance and bounded in size.
 */

/** What `@fastify/rate-limit` expects of a store (its `incr`, `read` and `child`). */
export interface RateLimitStore {
  incr: (key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number, max?: number) => void
  read: (key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number) => void
  child: (routeOptions: unknown) => RateLimitStore
}

/** Counters kept before the oldest are dropped (keys, or callers' addresses on an open gateway). */
export const MAX_TRACKED = 10_000

interface Window { count: number; start: number }

/**
 * Fixed windows of `timeWindow` ms per key, on the given clock. `child()` shares the counters (one
 * budget per key, whichever limited route the request takes).
 */
export class WindowStore implements RateLimitStore {
  constructor (private readonly now: () => number, private readonly windows = new Map<string, Window>()) {}

  incr (key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number, _max?: number): void {
    const now = this.now()
    let w = this.windows.get(key)
    if (!w || w.start + timeWindow <= now) {
      if (!w && this.windows.size >= MAX_TRACKED) this.prune(now, timeWindow)
      w = { count: 0, start: now }
      this.windows.delete(key)
      this.windows.set(key, w)
    }
    w.count++
    cb(null, { current: w.count, ttl: w.start + timeWindow - now })
  }

  read (key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number): void {
    const now = this.now()
    const w = this.windows.get(key)
    if (!w || w.start + timeWindow <= now) cb(null, { current: 0, ttl: 0 })
    else cb(null, { current: w.count, ttl: w.start + timeWindow - now })
  }

  child (): WindowStore {
    return new WindowStore(this.now, this.windows)
  }

  /** Drop expired windows; if none expired, the oldest one (insertion order is start order). */
  private prune (now: number, timeWindow: number): void {
    for (const [k, w] of this.windows) if (w.start + timeWindow <= now) this.windows.delete(k)
    if (this.windows.size >= MAX_TRACKED) this.windows.delete(this.windows.keys().next().value!)
  }

  get size (): number {
    return this.windows.size
  }
}

/** A shared counter (`qwenStore.counters`): undefined when unreachable. */
export type SharedHit = (key: string, windowMs: number) => Promise<{ current: number; ttl: number } | undefined>

/** What per-key limits do while the shared store is unreachable (`RATE_LIMIT_ON_STORE_ERROR`). */
export type OnStoreError = 'local' | 'allow' | 'deny'

/**
 * The same windows counted across replicas through the shared store; while it is unreachable,
 * `onError` decides: `local`, each replica counts for itself (a per-replica limit rather than
 * none); `allow`, nothing is counted; `deny`, the request fails with `denied()`.
 */
export class SharedWindowStore implements RateLimitStore {
  constructor (
    private readonly shared: SharedHit,
    private readonly local: WindowStore,
    private readonly onError: OnStoreError = 'local',
    private readonly denied: () => Error = () => new Error('the shared rate-limit store is unavailable'),
  ) {}

  incr (key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number, max?: number): void {
    const unavailable = (): void => {
      if (this.onError === 'allow') cb(null, { current: 0, ttl: timeWindow })
      else if (this.onError === 'deny') cb(this.denied(), { current: 0, ttl: 0 })
      else this.local.incr(key, cb, timeWindow, max)
    }
    this.shared(key, timeWindow).then((r) => {
      if (r) cb(null, r)
      else unavailable()
    }, unavailable)
  }

  read (key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number): void {
    this.local.read(key, cb, timeWindow)
  }

  child (): SharedWindowStore {
    return this
  }
}

/** Requests in progress per key; `acquire` refuses past the limit, the returned release is idempotent. */
export class Leases {
  private readonly held = new Map<string, number>()

  /** A release function, or undefined when `key` already holds `max` leases. */
  acquire (key: string, max: number): (() => void) | undefined {
    const n = this.held.get(key) ?? 0
    if (n >= max) return undefined
    this.held.set(key, n + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.held.get(key) ?? 1) - 1
      if (left <= 0) this.held.delete(key)
      else this.held.set(key, left)
    }
  }

  /** Leases `key` holds now. */
  count (key: string): number {
    return this.held.get(key) ?? 0
  }

  /** Leases held over every key. */
  get total (): number {
    let t = 0
    for (const n of this.held.values()) t += n
    return t
  }
}
