import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { RequestRecorder } from '../src/admin/recorder.js'
import type { RequestRecord } from '../src/admin/request-log.js'
import { RuntimeAccounts } from '../src/admin/runtime-accounts.js'
import type { AdminState } from '../src/admin/schemas.js'
import { adminState } from '../src/admin/view.js'
import { AuthenticationError, GatewayError, toOpenAIError } from '../src/errors.js'
import { ANONYMOUS_KEY_NAME } from '../src/keys.js'
import { VERSION } from '../src/version.js'

/** One open live stream (`GET /admin/api/events`). */
export interface LiveClient {
  send: (event: 'state' | 'request', data: unknown) => void
  close: () => void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The operator dashboard's services (only when `adminUi` is on). */
    qwenAdmin: {
      accounts: RuntimeAccounts
      recorder: RequestRecorder
      /** The pool as the dashboard shows it, now. */
      state: () => AdminState
      /** Something changed: live clients get a new snapshot (coalesced). */
      changed: () => void
      /** Register a live stream; returns its removal. */
      attach: (c: LiveClient) => () => void
    }
  }
}

/** Snapshots to live clients at most this often. */
const COALESCE_MS = 250
/** A snapshot this often while clients are connected (cooldowns that end raise no event); doubles as keep-alive. */
const PERIODIC_MS = 5_000

/**
 * The dashboard's services: the recent-request recorder (fed from `qwenEvents`), runtime accounts
 * (restored from `qwenStore.accounts` at start-up), and the live hub that pushes pool snapshots to
 * open `/admin/api/events` streams, closed in `preClose` so that `close()` never waits on a browser.
 */
/** How often the runtime accounts follow the shared store (another replica's additions and removals). */
const ACCOUNT_SYNC_MS = 10_000

export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const pool = fastify.qwenPool
  const startedAt = cfg.now()
  const accounts = new RuntimeAccounts({
    pool,
    store: fastify.qwenStore.accounts,
    secret: cfg.stateSecret,
    durable: cfg.redis !== undefined || cfg.redisUrl !== undefined,
    refresh: async (i) => {
      const r = await fastify.qwenTokens.refresh(i)
      if (r.success) pool.reset(i, 'challenge')
      return r
    },
    now: cfg.now,
    log: fastify.log,
  })
  const restored = await accounts.restore()
  if (restored > 0) fastify.log.info({ accounts: restored }, 'runtime accounts restored')
  if (accounts.persistent) {
    // Accounts added or removed on another replica, or stored before Redis answered at start-up.
    const follow = (): void => {
      accounts.sync().then((r) => {
        if (r.added + r.removed > 0) fastify.log.info(r, 'runtime accounts followed the shared store')
      }, (err: unknown) => { fastify.log.warn({ err }, 'runtime accounts: the store could not be read') })
    }
    const off = fastify.qwenStoreInfo.onMode((m) => { if (m === 'redis') follow() })
    const timer = setInterval(follow, ACCOUNT_SYNC_MS)
    timer.unref()
    fastify.addHook('onClose', async () => { clearInterval(timer); off() })
  }
  const recorder = new RequestRecorder(fastify.qwenEvents, fastify.qwenStore.requests, {
    now: cfg.now,
    replica: fastify.qwenStoreInfo.replicaId,
    onError: (err) => { fastify.log.warn({ err }, 'request log: record not stored') },
  })

  // The log keeps the error's code (never its message): the error handler's view of it.
  fastify.addHook('onError', async (request, _reply, error) => {
    const code = toOpenAIError(error).body.error.code
    if (code) recorder.noteError(request.qwenRequestId, code)
  })

  const state = (): AdminState => adminState({
    pool,
    isRuntime: (id) => accounts.has(id),
    now: cfg.now(),
    version: VERSION,
    startedAt,
    replicaId: fastify.qwenStoreInfo.replicaId,
    storeMode: fastify.qwenStoreInfo.mode(),
    accountsPersistent: accounts.persistent,
    serverMode: cfg.serverMode,
  })

  const clients = new Set<LiveClient>()
  let pending: NodeJS.Timeout | undefined
  let periodic: NodeJS.Timeout | undefined
  const flush = (): void => {
    pending = undefined
    if (clients.size === 0) return
    const s = state()
    for (const c of clients) c.send('state', s)
  }
  const changed = (): void => {
    if (pending || clients.size === 0) return
    pending = setTimeout(flush, COALESCE_MS)
  }
  let closing = false
  const attach = (c: LiveClient): (() => void) => {
    if (closing) {
      // The app is closing: a stream opened now would hold the server open.
      setImmediate(c.close)
      return () => {}
    }
    clients.add(c)
    periodic ??= setInterval(changed, PERIODIC_MS)
    return () => {
      clients.delete(c)
      if (clients.size === 0 && periodic) {
        clearInterval(periodic)
        periodic = undefined
      }
    }
  }
  const offs = [
    fastify.qwenEvents.on('identity.health', changed),
    fastify.qwenEvents.on('token.refreshed', changed),
    fastify.qwenEvents.on('token.failed', changed),
    recorder.subscribe((r: RequestRecord) => {
      for (const c of clients) c.send('request', r)
      changed()
    }),
  ]
  fastify.decorate('qwenAdmin', { accounts, recorder, state, changed, attach })
  fastify.addHook('preClose', async () => {
    closing = true
    for (const c of [...clients]) c.close()
    clients.clear()
  })
  fastify.addHook('onClose', async () => {
    if (pending) clearTimeout(pending)
    if (periodic) clearInterval(periodic)
    for (const off of offs) off()
    recorder.close()
  })
}, { name: 'qwen-admin', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events', 'qwen-store', 'qwen-identity-pool', 'qwen-token-refresher', 'qwen-auth'] })

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/**
 * Guards an encapsulated scope of `/admin/api/*` routes (call it inside that scope): a per-socket-
 * address rate limit counted before the key is checked (so wrong keys count), then the admin key
 * (`ADMIN_API_KEY`, else the first `API_KEY`), or a loopback caller when no key is configured.
 * The routes themselves are `qwenAuth: 'public'` so that the gateway's auth hook leaves them here.
 */
export async function guardAdminApi (scope: FastifyInstance): Promise<void> {
  const cfg = scope.qwenConfig
  let check: ReturnType<FastifyInstance['createRateLimit']> | undefined
  await scope.register(async (child) => {
    await child.register(rateLimit, { global: false })
    check = child.createRateLimit({ timeWindow: 60_000, max: cfg.adminRateLimitRpm, keyGenerator: (req) => req.socket.remoteAddress ?? 'unknown' })
  })
  const limiter = check!
  scope.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('cache-control', 'no-store')
    const r = await limiter(request)
    if (!r.isAllowed && r.isExceeded) {
      const seconds = Math.max(1, Math.ceil(r.ttl / 1000))
      throw new GatewayError(`Too many dashboard requests from this address: at most ${cfg.adminRateLimitRpm} per minute; retry in ${seconds} s`, {
        status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', headers: { 'retry-after': String(seconds) },
      })
    }
    const keys = scope.qwenKeys
    if (keys.admin) {
      if (!scope.qwenIsAdmin(request)) throw new AuthenticationError('Invalid or missing admin API key')
      request.qwenKeyName = keys.admin.name
      return
    }
    if (!LOOPBACK.has(request.socket.remoteAddress ?? '')) {
      throw new GatewayError('The dashboard answers only loopback requests when no API_KEY or ADMIN_API_KEY is configured', { status: 403, type: 'permission_error', code: 'forbidden' })
    }
    request.qwenKeyName = ANONYMOUS_KEY_NAME
  })
}
