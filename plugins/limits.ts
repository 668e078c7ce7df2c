import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { GatewayError } from '../src/errors.js'
import { Leases, SharedWindowStore, WindowStore } from '../src/limits.js'
import { ANONYMOUS } from './auth.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Whether the route counts against the per-key limits. Unset: POST routes whose URL ends in a
     * completion path (`COMPLETION_ROUTE`) count, others do not; `true`/`false` overrides that.
     */
    qwenLimit?: boolean
  }
  interface FastifyInstance {
    /** Per-key limits: what applies to a key name, and the requests each key has in progress. */
    qwenLimits: {
      limitsFor: (keyName: string) => KeyLimit
      /** Limited requests in progress per bucket (`key:<name>`, or `ip:<address>` on an open gateway). */
      leases: Leases
    }
  }
}

/** The limits of one key; 0 means none. */
export interface KeyLimit { rpm: number; streams: number }

/** The completion routes: chat completions, messages, responses, images, videos (POST). */
export const COMPLETION_ROUTE = /\/v1\/(?:chat\/completions|messages|responses|images\/[^/]+|videos)$/

const WINDOW_MS = 60_000

/**
 * The counter of a request: its key's name, or (on an open gateway, where everybody is
 * `anonymous`) its address, so that one caller does not use up everybody's budget.
 */
function bucketOf (request: FastifyRequest): string {
  const name = request.qwenKeyName ?? ANONYMOUS
  return name === ANONYMOUS ? `ip:${request.ip}` : `key:${name}`
}

/**
 * Per-key limits on the completion routes, checked in onRequest after authentication (before the
 * body is read): requests per minute through `@fastify/rate-limit` (fixed one-minute windows in a
 * `WindowStore`), and requests in progress through a lease released when the response closes.
 * Exceeding either throws a 429 `GatewayError` with `retry-after` (`rate_limit_exceeded`,
 * `too_many_concurrent_requests`), which each face's error handler renders in its own envelope.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const limitsFor = (keyName: string): KeyLimit => {
    const own = cfg.keyLimits[keyName]
    return { rpm: own?.rpm ?? cfg.rateLimitRpm, streams: own?.streams ?? cfg.maxConcurrentStreamsPerKey }
  }
  const leases = new Leases()
  fastify.decorate('qwenLimits', { limitsFor, leases })

  fastify.addHook('onRoute', (route) => {
    if (route.config?.qwenLimit !== undefined) return
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    route.config = { ...route.config, qwenLimit: methods.includes('POST') && COMPLETION_ROUTE.test(route.url) }
  })

  // The limiter lives in a child context: its decorators stay private, and no route of its own is limited.
  const now = cfg.now
  const counters = fastify.qwenStore.counters
  const local = new WindowStore(now)
  // Counted across replicas with a shared store; while it is unreachable, as RATE_LIMIT_ON_STORE_ERROR says.
  const onError = counters ? cfg.rateLimitOnStoreError : 'local'
  const denied = (): GatewayError => new GatewayError('Per-key rate limits cannot be checked right now: the shared store (Redis) is unreachable and this gateway refuses requests meanwhile (RATE_LIMIT_ON_STORE_ERROR=deny); retry shortly', {
    status: 429, type: 'rate_limit_error', code: 'rate_limit_store_unavailable', headers: { 'retry-after': '1' },
  })
  class Store extends SharedWindowStore {
    constructor () { super(counters ? async (key, ms) => await counters.hit(key, ms) : async () => undefined, local, onError, denied) }
  }
  let limiter: ReturnType<FastifyInstance['createRateLimit']> | undefined
  await fastify.register(async (child) => {
    await child.register(rateLimit, { global: false, store: Store, hook: 'onRequest' })
    limiter = child.createRateLimit({
      timeWindow: WINDOW_MS,
      keyGenerator: bucketOf,
      max: (req: FastifyRequest) => limitsFor(req.qwenKeyName ?? ANONYMOUS).rpm,
    })
  })
  const check = limiter!

  fastify.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.qwenLimit !== true || request.qwenKeyName === null) return
    const limit = limitsFor(request.qwenKeyName)
    const bucket = bucketOf(request)
    if (limit.rpm > 0) {
      const r = await check(request)
      if (!r.isAllowed && r.isExceeded) {
        const seconds = Math.max(1, Math.ceil(r.ttl / 1000))
        throw new GatewayError(`Rate limit reached for this API key: ${limit.rpm} requests per minute; retry in ${seconds} s`, {
          status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', headers: { 'retry-after': String(seconds) },
        })
      }
    }
    if (limit.streams > 0) {
      const release = leases.acquire(bucket, limit.streams)
      if (!release) {
        throw new GatewayError(`Too many concurrent requests for this API key: at most ${limit.streams} at a time`, {
          status: 429, type: 'rate_limit_error', code: 'too_many_concurrent_requests', headers: { 'retry-after': '1' },
        })
      }
      reply.raw.once('close', release)
      reply.raw.once('finish', release)
    }
  })
}, { name: 'qwen-limits', fastify: '5.x', dependencies: ['qwen-config', 'qwen-auth', 'qwen-store'] })
