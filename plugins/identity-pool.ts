import fp from 'fastify-plugin'
import { IdentityPool, makeIdentity, type Identity } from '../src/pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The upstream accounts this gateway serves from (server mode). */
    qwenPool: IdentityPool
  }
}

/**
 * Builds the pool from the configured cookies. `qwenToken` seeds the token of a single cookie, or
 * is a token-only identity when there is no cookie.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const identities: Identity[] = []
  const cookies = cfg.cookies
  if (cookies.length === 0 && cfg.qwenToken) {
    identities.push(makeIdentity(undefined, cfg.qwenToken))
  } else {
    if (cfg.qwenToken && cookies.length > 1) {
      fastify.log.warn('QWEN_TOKEN is ignored when several cookies are configured: each account fetches its own token')
    }
    for (const cookie of cookies) identities.push(makeIdentity(cookie, cookies.length === 1 ? cfg.qwenToken : undefined))
  }
  const pool = new IdentityPool(identities, cfg.now)
  if (pool.identities.length === 0 && cfg.serverMode) {
    fastify.log.warn('No upstream account is configured: completions answer 503 no_upstream_identity. Set COOKIE (see the README), or try `npm run demo`.')
  }
  fastify.decorate('qwenPool', pool)
}, { name: 'qwen-identity-pool', fastify: '5.x', dependencies: ['qwen-config'] })
