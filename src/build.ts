/** `buildServer()`: a standalone Fastify instance with the gateway at its root, not listening. */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { requestIdFor } from '../plugins/request-id.js'
import { app } from './app.js'
import type { GatewayOptions } from './options.js'

/**
 * The non-encapsulated twin of the plugin: its error and not-found handlers land on the root
 * instance. `fp` marks the function it wraps, so this wraps a fresh function, never `app` itself.
 */
export const qwenGatewayRoot = fp<GatewayOptions>(async function qwenGatewayRoot (fastify, opts) {
  await app(fastify, opts)
}, { name: 'qwen-gateway-root', fastify: '5.x' })

/** Log paths that may hold secrets. */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  '*.token',
  '*.cookie',
  '*.apiKey',
  '*.password',
]

export interface BuildOptions {
  /** pino options, `false` for silence, or `true` for defaults; secrets are redacted either way. */
  logger?: boolean | { level?: string; [k: string]: unknown }
  /** Other Fastify server options (timeouts, trustProxy, …). */
  server?: Omit<FastifyServerOptions, 'logger' | 'loggerInstance'>
}

/** Completions write their own access-log line (model, identity, status, TTFT, usage, chat id). */
const COMPLETIONS_PATH = /\/v1\/chat\/completions(?:\?|$)/

export async function buildServer (options: GatewayOptions = {}, build: BuildOptions = {}): Promise<FastifyInstance> {
  const logger = build.logger === false
    ? false
    : { level: options.debugMode ? 'debug' : 'info', ...(typeof build.logger === 'object' ? build.logger : {}), redact: REDACT }
  const server = Fastify({
    logger,
    // The id in log lines (`reqId`) is the one echoed in `x-request-id`: the caller's when it is a
    // safe token, otherwise a new one (never the raw header, which may hold anything).
    requestIdHeader: false,
    genReqId: requestIdFor,
    trustProxy: true,
    forceCloseConnections: 'idle',
    logController: new LogController({ disableRequestLogging: (req: { url?: string }) => COMPLETIONS_PATH.test(req.url ?? '') }),
    ...build.server,
  })
  await server.register(qwenGatewayRoot, options)
  return server
}

