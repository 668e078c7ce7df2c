import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  AccountsResponseSchema, ActionResponseSchema, AddAccountsBodySchema, AddAccountsResponseSchema, AdminStateSchema,
  DeleteAccountResponseSchema, IdentityParamsSchema, RequestsQuerySchema, RequestsResponseSchema,
} from '../../src/admin/schemas.js'
import { adminIdentity } from '../../src/admin/view.js'
import { identityStatus } from '../../src/pool-view.js'
import { GatewayError } from '../../src/errors.js'
import { credentialsOf, type Identity } from '../../src/pool.js'
import { transportError } from '../../src/upstream/client.js'
import { ErrorResponses } from '../../src/schemas.js'
import type { RequestRecord } from '../../src/admin/request-log.js'

/** How every admin route appears in the OpenAPI document (the gateway's auth hook does not guard them: `guardAdminApi` does). */
const doc = { security: [{ apiKey: [] }], tags: ['admin'] }
const pub = { qwenAuth: 'public' as const }

const ACTIONS = ['refresh', 'test', 'reset', 'disable', 'enable'] as const

/** `null` for undefined: the JSON the page reads. */
function wire (r: RequestRecord): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === undefined ? null : v]))
}

/**
 * The dashboard's JSON API: the pool snapshot, the recent requests, actions on one identity, and
 * runtime accounts. Admin key (or loopback without one), rate limited per socket address.
 */
const adminApi: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  const admin = fastify.qwenAdmin
  const pool = fastify.qwenPool

  const find = (id: string): Identity => {
    const i = pool.get(id)
    if (!i) throw new GatewayError(`No identity has the id \`${id}\``, { status: 404, type: 'not_found_error', code: 'identity_not_found', param: 'id' })
    return i
  }
  const view = (i: Identity) => adminIdentity(pool, i, admin.accounts.has(i.id), cfg.now())

  fastify.get('/admin/api/state', {
    config: pub,
    schema: { ...doc, description: 'Dashboard: the pool now (masked labels, states, deadlines) (admin key)', response: { 200: AdminStateSchema, ...ErrorResponses } },
  }, async () => admin.state())

  fastify.get('/admin/api/requests', {
    config: pub,
    schema: { ...doc, description: 'Dashboard: the last requests, newest first; no prompt text (admin key)', querystring: RequestsQuerySchema, response: { 200: RequestsResponseSchema, ...ErrorResponses } },
  }, async (request) => {
    const q = request.query
    let list = await fastify.qwenStore.requests.recent(200)
    if (q.model) list = list.filter((r) => r.model === q.model)
    if (q.identity) list = list.filter((r) => r.identity === q.identity || r.tried.includes(q.identity!))
    if (q.status) list = list.filter((r) => (q.status === 'ok') === (r.status < 400))
    return { serverTime: cfg.now(), requests: list.slice(0, q.limit ?? 200).map(wire) as never }
  })

  const act = async (action: typeof ACTIONS[number], i: Identity): Promise<{ ok: boolean; message: string; latencyMs?: number }> => {
    switch (action) {
      case 'refresh': {
        await fastify.qwenTokens.ready()
        const r = await fastify.qwenTokens.refresh(i)
        if (r.success) pool.reset(i, 'challenge')
        return { ok: r.success, message: r.success ? 'Token refreshed' : `Token refresh failed: ${r.error ?? 'unknown error'}` }
      }
      case 'test': {
        const started = Date.now()
        try {
          if (pool.needsTokenNow(i)) {
            const r = await fastify.qwenTokens.refresh(i)
            if (!r.success) return { ok: false, message: `No token: ${r.error ?? 'unknown error'}`, latencyMs: Date.now() - started }
          }
          // The smallest request that needs the account's token: the first page of its chat list.
          const chats = await fastify.qwenUpstream.listChats(credentialsOf(i), i.proxyUrl ? { proxyUrl: i.proxyUrl } : {})
          return { ok: true, message: `The upstream accepted this account (${chats.length} chats on its first page)`, latencyMs: Date.now() - started }
        } catch (err) {
          return { ok: false, message: `The upstream refused or failed: ${(transportError(err) as Error).message}`, latencyMs: Date.now() - started }
        }
      }
      case 'reset':
        pool.reset(i, 'all')
        return { ok: true, message: 'Cooldowns and breaker reset' }
      case 'disable':
      case 'enable':
        fastify.qwenStore.identities.setDisabled(i.id, action === 'disable')
        return { ok: true, message: action === 'disable' ? 'Disabled: it takes no request until enabled' : 'Enabled' }
    }
  }

  for (const action of ACTIONS) {
    fastify.post(`/admin/api/identities/:id/${action}`, {
      config: pub,
      schema: { ...doc, description: `Dashboard: ${action} one identity (admin key)`, params: IdentityParamsSchema, response: { 200: ActionResponseSchema, ...ErrorResponses } },
    }, async (request) => {
      const i = find(request.params.id)
      const r = await act(action, i)
      admin.changed()
      return { ...r, identity: view(i) }
    })
  }

  fastify.get('/admin/api/accounts', {
    config: pub,
    schema: { ...doc, description: 'Dashboard: accounts added at runtime, masked (admin key)', response: { 200: AccountsResponseSchema, ...ErrorResponses } },
  }, async () => ({
    persistent: admin.accounts.persistent,
    accounts: admin.accounts.list().flatMap(({ id, addedAt }) => {
      const i = pool.get(id)
      return i ? [{ id, label: view(i).label, status: identityStatus(pool, i), addedAt }] : []
    }),
  }))

  fastify.post('/admin/api/accounts', {
    config: pub,
    schema: { ...doc, description: 'Dashboard: add accounts, cookies or `email:password`, one per line (admin key)', body: AddAccountsBodySchema, response: { 200: AddAccountsResponseSchema, ...ErrorResponses } },
  }, async (request) => {
    if (!cfg.serverMode) throw new GatewayError('Accounts serve only in server mode (SERVER_MODE=true)', { status: 409, type: 'invalid_request_error', code: 'not_server_mode' })
    const results = await admin.accounts.add(request.body.accounts)
    if (results.length === 0) throw new GatewayError('No account in the text: one cookie or email:password per line', { status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'accounts' })
    admin.changed()
    return { persistent: admin.accounts.persistent, results }
  })

  fastify.delete('/admin/api/accounts/:id', {
    config: pub,
    schema: { ...doc, description: 'Dashboard: remove an account added at runtime (admin key)', params: IdentityParamsSchema, response: { 200: DeleteAccountResponseSchema, ...ErrorResponses } },
  }, async (request) => {
    const id = request.params.id
    if (!admin.accounts.has(id)) {
      if (pool.get(id)) throw new GatewayError('This account is configured (env or file): it is read-only here', { status: 409, type: 'invalid_request_error', code: 'account_read_only', param: 'id' })
      find(id)
    }
    await admin.accounts.remove(id)
    admin.changed()
    return { ok: true, id }
  })
}

export default adminApi
