import type { FastifyPluginAsync } from 'fastify'
import { guardAdminApi } from '../../plugins/admin.js'
import { adminUiDir, loadIndex } from '../../src/admin/assets.js'
import adminApi from './api.js'
import adminEvents from './events.js'
import adminUi from './ui.js'

/**
 * The operator dashboard (`adminUi`): the page under `/admin/` and its JSON API under
 * `/admin/api/*`. Every response carries a strict CSP (`frame-ancestors 'none'`) and
 * `Referrer-Policy: no-referrer`.
 */
const admin: FastifyPluginAsync = async (fastify) => {
  const dir = adminUiDir()
  const { html, csp } = loadIndex(dir)
  fastify.addHook('onSend', async (_request, reply, payload) => {
    void reply.header('content-security-policy', csp)
    void reply.header('x-frame-options', 'DENY')
    void reply.header('referrer-policy', 'no-referrer')
    void reply.header('x-content-type-options', 'nosniff')
    return payload
  })
  await fastify.register(adminUi, { csp, html, dir })
  await fastify.register(async (api) => {
    await guardAdminApi(api)
    await api.register(adminApi)
    await api.register(adminEvents)
  })
}

export default admin
