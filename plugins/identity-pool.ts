import fp from 'fastify-plugin'
import { splitProxy } from '../src/entries.js'
import { IdentityPool, makeIdentity, type Identity } from '../src/pool.js'
import { StateKeys, StatePersister, restorePool, serializePool } from '../src/state.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The upstream accounts this gateway serves from (server mode). */
    qwenPool: IdentityPool
  }
}

/**
 * Builds the pool from the configured cookies (an entry may end in `@proxy=<url>`), sign-in
 * accounts and `qwenToken` (which seeds the token of a single cookie, or is a token-only identity
 * when there is no cookie), restores saved state when a `stateFile` is given, and saves changes
 * (debounced, flushed on close).
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const identities: Identity[] = []
  const cookies = cfg.cookies.map(splitProxy)
  if (cookies.length === 0 && cfg.qwenToken) {
    identities.push(makeIdentity({ token: cfg.qwenToken, source: 'QWEN_TOKEN' }))
  } else if (cfg.qwenToken && cookies.length > 1) {
    fastify.log.warn('QWEN_TOKEN is ignored when several cookies are configured: each account fetches its own token')
  }
  for (const [k, c] of cookies.entries()) {
    identities.push(makeIdentity({
      source: `cookie ${k + 1}`,
      cookie: c.value,
      ...(cookies.length === 1 && cfg.qwenToken ? { token: cfg.qwenToken } : {}),
      ...(c.proxyUrl ? { proxyUrl: c.proxyUrl } : {}),
    }))
  }
  for (const [k, a] of cfg.accounts.entries()) identities.push(makeIdentity({ ...a, source: `account ${k + 1}` }))

  let persister: StatePersister | undefined
  const events = fastify.qwenEvents
  const store = fastify.qwenStore.identities
  const pool = new IdentityPool(identities, {
    now: cfg.now,
    store,
    policy: cfg.poolPolicy,
    log: fastify.log,
    onChange: () => persister?.schedule(),
    onHealth: (i, applied) => {
      events.emit('identity.health', { identity: i.id, label: i.label, ...(applied.transition ? { transition: applied.transition } : {}), ...(applied.cooldown ? { cooldown: applied.cooldown } : {}) })
    },
  })
  fastify.addHook('onClose', async () => { pool.close() })
  if (pool.identities.length === 0 && cfg.serverMode) {
    fastify.log.warn('No upstream account is configured: completions answer 503 no_upstream_identity. Set COOKIE (see the README), or try `npm run demo`.')
  }

  const file = cfg.stateFile
  if (file) {
    let keys: StateKeys | undefined
    let rewrite = false
    try {
      const text = await file.load()
      if (text !== undefined) {
        const r = restorePool(pool, text, cfg.stateSecret)
        keys = r.keys
        rewrite = r.migrated || r.cookieChanged.length > 0
        for (const label of r.cookieChanged) {
          fastify.log.info({ identity: label }, 'the cookie changed since the state was saved: challenge cooldown cleared, saved token not used')
        }
        fastify.log.info({ identities: r.identities, tokens: r.tokens, ...(r.migrated ? { migrated: true } : {}) }, 'identity pool state restored')
      }
    } catch (err) {
      fastify.log.warn({ err: (err as Error).message }, 'identity pool state not restored')
    }
    const k = keys ?? new StateKeys(cfg.stateSecret)
    persister = new StatePersister(file, () => serializePool(pool, k, cfg.now()), cfg.stateDebounceMs, (err) => {
      fastify.log.warn({ err: (err as Error).message }, 'identity pool state could not be saved')
    })
    const p = persister
    // An old format (or a cookie that changed) is written again at once, not at the next change.
    if (rewrite) await p.flush(true)
    fastify.addHook('onClose', async () => { await p.flush(true) })
  }
  fastify.decorate('qwenPool', pool)
}, { name: 'qwen-identity-pool', fastify: '5.x', dependencies: ['qwen-config', 'qwen-store', 'qwen-events'] })
