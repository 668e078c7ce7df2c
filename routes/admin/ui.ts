import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'
import { basename } from 'node:path'
import { VENDOR_FILES, vendorDirs } from '../../src/admin/assets.js'

/**
 * The dashboard page: `/admin/` (its HTML, with the import map allowed by hash), its scripts and
 * styles from `admin-ui/`, and Preact + htm from `node_modules` under `/admin/vendor/`. Public:
 * the page asks for the key and sends it only to `/admin/api/*`.
 */
const adminUi: FastifyPluginAsync<{ csp: string; html: string; dir: string }> = async (fastify, opts) => {
  fastify.addHook('onRoute', (route) => {
    route.config = { qwenAuth: 'public', ...route.config }
  })
  const page = `${fastify.prefix}/admin/`
  fastify.get('/admin', { schema: { hide: true } }, async (_request, reply) => reply.redirect(page, 308))
  fastify.get('/admin/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(opts.html))
  await fastify.register(fastifyStatic, {
    root: opts.dir,
    prefix: '/admin/',
    index: false,
    decorateReply: false,
    cacheControl: true,
    maxAge: 0,
    allowedPath: (path) => path !== '/index.html',
  })
  await fastify.register(fastifyStatic, {
    root: vendorDirs(),
    prefix: '/admin/vendor/',
    decorateReply: false,
    immutable: true,
    maxAge: '365d',
    allowedPath: (path) => VENDOR_FILES.has(basename(path)),
  })
}

export default adminUi
