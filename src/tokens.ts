/**
 * Token lifecycle: fetch tokens from cookies at start-up (bounded parallelism), refresh tokens that
 * are about to expire, refresh on demand, and cache client-mode tokens by a hash of their cookie.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { TokenCipher } from './state.js'
import type { SharedTokens } from './store/tokens.js'
import { formatRemaining } from './jwt.js'
import type { TokenRefreshedEvent } from './options.js'
import type { Identity, IdentityPool } from './pool.js'
import type { Static } from '@sinclair/typebox'
import { UpstreamError } from './errors.js'
import type { RefreshResultSchema } from './schemas.js'
import type { GatewayEvents } from './events.js'
import { transportError, type UpstreamClient } from './upstream/client.js'
import { poolCounts } from './pool-view.js'
import { untilAborted } from './grace.js'

/** One identity's refresh, as `/refresh-token` reports it, plus what the upstream said (for callers that map it to a status; never in a response). */
export type RefreshResult = Static<typeof RefreshResultSchema> & { cause?: UpstreamError }

interface Logger {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

const CLIENT_CACHE_MAX = 1000

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) {
      const k = next++
      out[k] = await fn(items[k]!)
    }
  })
  await Promise.all(workers)
  return out
}

/** Tokens shared between replicas (a shared store): sealed with `cipher`, refreshed under a lease. */
export interface SharedTokenOptions {
  store: SharedTokens
  cipher: TokenCipher
  /** How long one replica's refresh may take before another one tries. */
  leaseMs: number
  /** How often a waiting replica looks for the new token. */
  pollMs: number
}

export class TokenService {
  private readonly inflight = new Map<string, Promise<RefreshResult>>()
  private readonly clientCache = new Map<string, { token: string; expiresAt: number | undefined }>()
  private readonly clientInflight = new Map<string, Promise<string>>()
  private init: Promise<void> | undefined
  private closed = false

  constructor (
    private readonly client: UpstreamClient,
    private readonly pool: IdentityPool,
    private readonly opts: { now: () => number; concurrency: number; log: Logger; events?: GatewayEvents; onTokenRefreshed?: ((e: TokenRefreshedEvent) => void | Promise<void>) | undefined; shared?: SharedTokenOptions | undefined },
  ) {}

  /** The app closes: waits on another replica's refresh end at their next poll. */
  close (): void {
    this.closed = true
  }

  /** Fetch a token for one identity from its cookie; one call at a time per identity. */
  refresh (i: Identity): Promise<RefreshResult> {
    let p = this.inflight.get(i.id)
    if (!p) {
      p = this.doRefresh(i).finally(() => this.inflight.delete(i.id))
      this.inflight.set(i.id, p)
    }
    return p
  }

  private async doRefresh (i: Identity): Promise<RefreshResult> {
    const base = { identity: i.id, label: i.label }
    if (!i.canRefresh) return { ...base, success: false, error: 'token-only identity: nothing to refresh from' }
    const shared = this.opts.shared
    if (!shared) return await this.fetch(i)
    // Another replica may have refreshed already, or be refreshing now: take its token.
    const adopted = await this.adopt(i, shared)
    if (adopted) return adopted
    const owner = randomUUID()
    if (await shared.store.lease(i.id, owner, shared.leaseMs)) {
      // Another replica may have finished between the first look and the lease: look again.
      const late = await this.adopt(i, shared)
      if (late) {
        await shared.store.release(i.id, owner)
        return late
      }
      const r = await this.fetch(i, async (token) => {
        const outcome = await shared.store.put(i.id, owner, shared.cipher.encrypt(token, i.id), i.expiresAt ?? 0)
        if (outcome !== 'ok') this.opts.log.info({ identity: i.label, outcome }, 'refreshed token not shared')
      })
      if (!r.success) await shared.store.release(i.id, owner)
      return r
    }
    // Wall-clock wait for the other replica's refresh (bounded by its lease; ends when the app closes).
    const end = Date.now() + shared.leaseMs
    while (Date.now() < end) {
      if (this.closed) return { ...base, success: false, error: 'the gateway is closing' }
      await new Promise((resolve) => { setTimeout(resolve, shared.pollMs).unref() })
      const a = await this.adopt(i, shared)
      if (a) return a
    }
    // The other replica's refresh never showed up: fetch ourselves.
    return await this.fetch(i)
  }

  /** Take the shared token when it is another (newer) one than ours and still valid. */
  private async adopt (i: Identity, shared: SharedTokenOptions): Promise<RefreshResult | undefined> {
    const stored = await shared.store.get(i.id)
    if (!stored) return undefined
    const token = shared.cipher.decrypt(stored.sealed, i.id)
    if (token === undefined || token === i.token) return undefined
    if (stored.exp > 0 && stored.exp <= this.opts.now() + 60_000) return undefined
    this.pool.setToken(i, token, stored.exp > 0 ? stored.exp : undefined)
    const remaining = (i.expiresAt ?? 0) - this.opts.now()
    this.opts.log.info({ identity: i.label, remaining: formatRemaining(remaining) }, 'upstream token taken from the shared store')
    return { identity: i.id, label: i.label, success: true, ...(i.expiresAt ? { expiresAt: new Date(i.expiresAt).toISOString(), remaining: formatRemaining(remaining) } : {}) }
  }

  /** Fetch a token upstream (sign-in or cookie); `share` stores it for the other replicas. */
  private async fetch (i: Identity, share?: (token: string) => Promise<void>): Promise<RefreshResult> {
    const base = { identity: i.id, label: i.label }
    try {
      const o = { proxyUrl: i.proxyUrl }
      const r = i.email !== undefined && i.password !== undefined
        ? await this.client.signIn(i.email, i.password, o)
        : await this.client.fetchToken(i.cookie!, o)
      this.pool.setToken(i, r.token, r.expiresAt)
      await share?.(r.token)
      const remaining = (i.expiresAt ?? 0) - this.opts.now()
      this.opts.log.info({ identity: i.label, remaining: formatRemaining(remaining) }, 'upstream token refreshed')
      this.opts.events?.emit('token.refreshed', { identity: i.id, label: i.label, expiresAt: i.expiresAt })
      if (this.opts.onTokenRefreshed) {
        const single = this.pool.identities.length === 1 && i.kind === 'cookie'
        try {
          await this.opts.onTokenRefreshed({ identity: i.id, token: r.token, singleCookie: single })
        } catch (err) {
          this.opts.log.warn({ identity: i.label, err: (err as Error).message }, 'token refresh hook failed')
        }
      }
      return { ...base, success: true, ...(i.expiresAt ? { expiresAt: new Date(i.expiresAt).toISOString(), remaining: formatRemaining(remaining) } : {}) }
    } catch (err) {
      const cause = transportError(err)
      const message = (cause as Error).message
      // The pool records it (a refused credential takes the identity out of rotation) and saves it.
      this.pool.refreshFailed(i, cause as Error)
      this.opts.log.warn({ identity: i.label, err: message }, 'upstream token refresh failed')
      this.opts.events?.emit('token.failed', { identity: i.id, label: i.label, error: message })
      return { ...base, success: false, error: message, ...(cause instanceof UpstreamError ? { cause } : {}) }
    }
  }

  /** Start-up: every identity that needs a token fetches one. Idempotent. */
  initialize (): Promise<void> {
    this.init ??= (async () => {
      await mapLimit(this.pool.needingRefresh(), this.opts.concurrency, (i) => this.refresh(i))
      this.pool.initialized = true
      const c = poolCounts(this.pool)
      this.opts.log.info({ ...c }, 'identity pool initialized')
    })()
    return this.init
  }

  /** Resolves once start-up token fetching has finished (immediately if it never started). */
  async ready (): Promise<void> {
    if (this.init) await this.init
  }

  /** Refresh the tokens that are missing or expire within the margin. */
  async refreshDue (): Promise<RefreshResult[]> {
    return mapLimit(this.pool.needingRefresh(), this.opts.concurrency, (i) => this.refresh(i))
  }

  /** Refresh the given identities regardless of expiry. */
  async refreshAll (identities: Identity[]): Promise<RefreshResult[]> {
    return mapLimit(identities, this.opts.concurrency, (i) => this.refresh(i))
  }

  /**
   * Client mode: a token for a caller's cookie, cached by a hash of the cookie until it expires.
   * Concurrent first requests for one cookie share one fetch; each caller stops waiting when its
   * own `signal` aborts (client gone, request timeout).
   */
  async clientToken (cookie: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<string> {
    const key = createHash('sha256').update(cookie).digest('base64url')
    const hit = this.clientCache.get(key)
    if (!opts.force && hit && (hit.expiresAt === undefined || hit.expiresAt > this.opts.now() + 60_000)) return hit.token
    let p = this.clientInflight.get(key)
    if (!p) {
      p = this.client.fetchToken(cookie).then((r) => {
        this.clientCache.delete(key)
        if (this.clientCache.size >= CLIENT_CACHE_MAX) this.clientCache.delete(this.clientCache.keys().next().value!)
        this.clientCache.set(key, { token: r.token, expiresAt: r.expiresAt })
        return r.token
      }).finally(() => this.clientInflight.delete(key))
      this.clientInflight.set(key, p)
    }
    return opts.signal ? untilAborted(p, opts.signal) : p
  }
}
