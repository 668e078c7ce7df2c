import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Caller } from '../src/turn/lease.js'
import { AuthenticationError, GatewayError } from '../src/errors.js'
import { ANONYMOUS_KEY_NAME, KeyRing } from '../src/keys.js'

/**
 * How a route is protected: open, the gateway key (and client credentials in client mode), or
 * admin. Protected by default: a route without `config.qwenAuth` needs the key (`api`); public
 * routes say so. Unknown URLs answer 404 without asking for a key.
 */
export type AuthMode = 'public' | 'api' | 'admin'

/** The key name of callers when no `API_KEY` is configured (the gateway is open). */
export const ANONYMOUS = ANONYMOUS_KEY_NAME

declare module 'fastify' {
  interface FastifyContextConfig {
    qwenAuth?: AuthMode
  }
  interface FastifyRequest {
    /** Who a completion runs as; set by the auth plugin on `api` routes. */
    qwenCaller: Caller | null
    /**
     * The name of the API key the request presented (`alice`, `key-1a2b3c4d`, `admin`), or
     * `anonymous` on an open gateway; `null` until authenticated (public routes, refused requests).
     * Logs, metrics and limits use it; the key itself is never kept.
     */
    qwenKeyName: string | null
  }
  interface FastifyInstance {
    /** Whether the request may see admin detail: the admin key, or loopback when no key is configured. */
    qwenIsAdmin: (request: FastifyRequest) => boolean
    /** The configured keys (names and digests). */
    qwenKeys: KeyRing
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** The key from `Authorization: Bearer <key>` or `x-api-key` (never the query string or body). */
export function presentedKey (request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim()
  const x = request.headers['x-api-key']
  return typeof x === 'string' && x.length > 0 ? x.trim() : undefined
}

/**
 * Client mode: `Bearer <api_key>;<qwen_token>;<cookie>` with a key configured, `Bearer
 * <qwen_token>;<cookie>` without. Everything after the token's `;` is the cookie (cookies contain
 * `;`). An empty token means "fetch it from the cookie".
 */
export function parseClientCredentials (value: string, withKey: boolean): { key?: string; token?: string; cookie?: string } {
  let rest = value
  let key: string | undefined
  if (withKey) {
    const k = rest.indexOf(';')
    key = k === -1 ? rest : rest.slice(0, k)
    rest = k === -1 ? '' : rest.slice(k + 1)
  }
  const t = rest.indexOf(';')
  const token = (t === -1 ? rest : rest.slice(0, t)).trim()
  const cookie = (t === -1 ? '' : rest.slice(t + 1)).trim()
  return { ...(key !== undefined ? { key: key.trim() } : {}), ...(token ? { token } : {}), ...(cookie ? { cookie } : {}) }
}

/**
 * Enforces each route's `config.qwenAuth` (default `api`) in an onRequest hook, and names the key
 * the caller presented (`request.qwenKeyName`). Any configured key opens the API routes (the admin
 * key too); only the admin key opens admin routes.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const keys = new KeyRing(cfg.apiKey, cfg.adminApiKey)
  const format = keys.enabled ? 'Authorization: Bearer <api_key>;<qwen_token>;<cookie>' : 'Authorization: Bearer <qwen_token>;<cookie>'

  const isAdmin = (request: FastifyRequest): boolean => keys.admin ? keys.isAdmin(presentedKey(request)) : LOOPBACK.has(request.socket.remoteAddress ?? '')
  fastify.decorate('qwenIsAdmin', isAdmin)
  fastify.decorate('qwenKeys', keys)
  fastify.decorateRequest('qwenCaller', null)
  fastify.decorateRequest('qwenKeyName', null)
  fastify.addHook('onRequest', async (request) => {
    const mode = request.is404 ? 'public' : (request.routeOptions.config.qwenAuth ?? 'api')
    if (mode === 'public') return
    if (mode === 'admin') {
      if (keys.admin) {
        if (!keys.isAdmin(presentedKey(request))) throw new AuthenticationError('Invalid or missing admin API key')
        request.qwenKeyName = keys.admin.name
        return
      }
      if (isAdmin(request)) {
        request.qwenKeyName = ANONYMOUS
        return
      }
      throw new GatewayError('This endpoint answers only loopback requests when no API_KEY is configured', { status: 403, type: 'permission_error', code: 'forbidden' })
    }
    if (cfg.serverMode) {
      if (keys.enabled) {
        const entry = keys.match(presentedKey(request))
        if (!entry) throw new AuthenticationError('Invalid or missing API key: send it as `Authorization: Bearer <key>` or `x-api-key`')
        request.qwenKeyName = entry.name
      } else {
        request.qwenKeyName = ANONYMOUS
      }
      request.qwenCaller = { kind: 'pool' }
      return
    }
    const auth = request.headers.authorization
    if (typeof auth !== 'string' || !/^bearer\s+/i.test(auth)) {
      throw new AuthenticationError(`Client mode needs upstream credentials: ${format}`, 'missing_credentials')
    }
    const c = parseClientCredentials(auth.replace(/^bearer\s+/i, ''), keys.enabled)
    if (keys.enabled) {
      const entry = keys.match(c.key)
      if (!entry) throw new AuthenticationError('Invalid API key')
      request.qwenKeyName = entry.name
    } else {
      request.qwenKeyName = ANONYMOUS
    }
    if (!c.token && !c.cookie) throw new AuthenticationError(`Client mode needs a Qwen token or cookie: ${format}`, 'missing_credentials')
    request.qwenCaller = { kind: 'client', token: c.token, cookie: c.cookie }
  })
}, { name: 'qwen-auth', fastify: '5.x', dependencies: ['qwen-config'] })
