import fp from 'fastify-plugin'
import { withinGrace } from '../src/grace.js'
import { TokenCipher } from '../src/state.js'
import { TokenService } from '../src/tokens.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Token fetching and refreshing for the pool and for client-mode callers. */
    qwenTokens: TokenService
  }
}

const CLOSE_WAIT_MS = 2_000

/**
 * Fetches every identity's token when the app is ready (in the background; requests wait for it),
 * then refreshes tokens close to expiry every `tokenRefreshIntervalHours` unless
 * `autoRefreshToken` is false. The timer is unref'd and cleared on close.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const tokens = new TokenService(fastify.qwenUpstream, fastify.qwenPool, {
    now: cfg.now,
    concurrency: cfg.startupConcurrency,
    log: fastify.log,
    events: fastify.qwenEvents,
    onTokenRefreshed: cfg.onTokenRefreshed,
    // With a shared store, one replica refreshes an identity's token and the others take it.
    shared: fastify.qwenStore.tokens && cfg.stateSecret
      ? { store: fastify.qwenStore.tokens, cipher: new TokenCipher(cfg.stateSecret, `qwen-gateway tokens ${cfg.redisNamespace}`), leaseMs: 30_000, pollMs: 250 }
      : undefined,
  })
  fastify.decorate('qwenTokens', tokens)
  let timer: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
    void tokens.initialize()
    if (cfg.autoRefreshToken && cfg.tokenRefreshIntervalHours > 0) {
      timer = setInterval(() => { void tokens.refreshDue() }, cfg.tokenRefreshIntervalHours * 3_600_000)
      timer.unref()
    }
  })
  fastify.addHook('onClose', async () => {
    if (timer) clearInterval(timer)
    tokens.close()
    // Let a start-up fetch in progress settle, but never hold shutdown up for a slow upstream
    // (the upstream plugin then cuts what is still running).
    await withinGrace(tokens.ready(), CLOSE_WAIT_MS)
  })
}, { name: 'qwen-token-refresher', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events', 'qwen-upstream', 'qwen-identity-pool', 'qwen-store'] })
