import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { GatewayError, UpstreamError } from '../src/errors.js'
import { formatRemaining } from '../src/jwt.js'
import { ErrorResponses, RefreshResponseSchema } from '../src/schemas.js'
import { tokenStatus } from '../src/pool-view.js'

const BodySchema = Type.Object({
  identity: Type.Optional(Type.String()),
  /** Also clear rate-limit and breaker cooldowns (a challenge cooldown is cleared by any successful explicit refresh). */
  resetCooldowns: Type.Optional(Type.Boolean()),
}, { additionalProperties: true })

/**
 * `POST /refresh-token`: fetch new tokens from the cookies of every identity, or of one
 * (`{"identity": "<id>"}`), and report per identity. Needs the API key (loopback only without one).
 * A successful explicit refresh clears the identity's anti-bot challenge cooldown (the operator
 * calls it after passing the check in a browser); `resetCooldowns: true` also clears rate-limit
 * and breaker cooldowns. The timer's periodic refreshes clear nothing.
 */
const refreshToken: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  fastify.post('/refresh-token', {
    config: { qwenAuth: 'admin' },
    schema: { body: BodySchema, response: { 200: RefreshResponseSchema, ...ErrorResponses } },
    // A bodyless POST means "refresh everything".
    preValidation: async (request) => { request.body ??= {} },
  }, async (request) => {
    const pool = fastify.qwenPool
    const wanted = request.body.identity
    let targets = pool.identities
    if (wanted !== undefined) {
      targets = pool.identities.filter((i) => i.id === wanted)
      if (targets.length === 0) {
        throw new GatewayError(`No identity has the id \`${wanted}\` (see /health with the API key)`, { status: 404, type: 'not_found_error', code: 'identity_not_found', param: 'identity' })
      }
    }
    if (targets.length === 0) throw new UpstreamError('no_identity', 'No upstream account is configured: nothing to refresh')
    const resetAll = request.body.resetCooldowns === true
    // A token-only identity has nothing to refresh: an explicit reset still applies to it.
    if (resetAll) for (const i of targets) if (!i.canRefresh) pool.reset(i, 'all')
    const refreshable = resetAll ? targets.filter((i) => i.canRefresh) : targets
    await fastify.qwenTokens.ready()
    const results = (await fastify.qwenTokens.refreshAll(refreshable)).map(({ cause: _, ...r }) => r)
    for (const r of results) {
      const i = pool.get(r.identity)
      if (r.success && i) pool.reset(i, resetAll ? 'all' : 'challenge')
    }
    const ok = results.filter((r) => r.success).length
    if (ok === 0 && results.length > 0) throw new UpstreamError('auth_failed', `Token refresh failed: ${results.map((r) => `${r.identity}: ${r.error}`).join('; ')}`)
    const token = tokenStatus(pool, cfg.now())
    let message = ok === results.length ? 'Token refresh succeeded' : `Token refresh succeeded for ${ok} of ${results.length} identities`
    if (results.length === 0) message = 'Cooldowns reset; token-only identities have nothing to refresh'
    return {
      success: ok === results.length,
      message,
      timestamp: new Date(cfg.now()).toISOString(),
      results,
      token: { valid: token.valid, remainingTime: token.remainingTime, formattedTime: formatRemaining(token.remainingTime) },
    }
  })
}

export default refreshToken
