/** `buildServer()`: a standalone Fastify instance with the gateway at its root, not listening. */
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { requestIdFor } from '../plugins/request-id.js'
import { app } from './app.js'
import { clip, type OpenAIErrorBody } from './errors.js'
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
const COMPLETIONS_PATH = /\/v1\/(?:chat\/completions|messages|responses)(?:\?|$)/

/** Fastify's "request completed" line gives way to the gateway's access line (`plugins/access-log.ts`); errors are still logged. */
class GatewayLogController extends LogController {
  override requestCompleted (...args: Parameters<LogController['requestCompleted']>): void {
    if (args[0]) super.requestCompleted(...args)
  }
}

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
    clientErrorHandler: qwenClientErrorHandler,
    trustProxy: true,
    forceCloseConnections: 'idle',
    // While the app drains, the request-lifecycle plugin answers new requests itself (503 in the
    // OpenAI envelope, probes still served) instead of Fastify's own 503 body.
    return503OnClosing: false,
    logController: new GatewayLogController({ disableRequestLogging: (req: { url?: string }) => COMPLETIONS_PATH.test(req.url ?? '') }),
    ...build.server,
  })
  await server.register(qwenGatewayRoot, options)
  return server
}

/** What a client error (raised by Node's HTTP parser, before Fastify sees a request) is answered with. */
export function clientErrorResponse (err: { code?: string; reason?: string }): { status: number; body: OpenAIErrorBody } {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, body: envelope('The request was not received in time', 'request_timeout') }
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, body: envelope('The request headers are too large', 'request_header_too_large') }
  }
  // llhttp's reason is a fixed phrase ("Invalid header value char"), never the client's bytes.
  const reason = typeof err.reason === 'string' && err.reason ? `: ${clip(err.reason)}` : ''
  return { status: 400, body: envelope(`Malformed HTTP request${reason}`, 'invalid_http_request') }
}

function envelope (message: string, code: string): OpenAIErrorBody {
  return { error: { message, type: 'invalid_request_error', param: null, code } }
}

/**
 * Fastify's `clientErrorHandler` (what `buildServer` installs; embedders may pass it to `Fastify()`):
 * HTTP parser errors (CR/LF or NUL in a header, folded headers, an oversized header block, a garbage
 * request line) and request timeouts are answered in the OpenAI envelope (400, 431 or 408), with
 * `content-type: application/json`, and the connection is closed.
 */
export function qwenClientErrorHandler (this: FastifyInstance | undefined, err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const { status, body } = clientErrorResponse(err)
  this?.log?.debug({ code: err.code, status }, 'client error')
  const json = JSON.stringify(body)
  // As Node does without a handler: never write into a response that has already started on this
  // connection (a pipelined request); just close it.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy()
    return
  }
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(json)}\r\n` +
    'Connection: close\r\n\r\n' +
    json,
    () => socket.destroy(),
  )
}
