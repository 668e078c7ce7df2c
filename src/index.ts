/**
 * Public API. The default export is the encapsulated plugin for host apps:
 *
 *   import qwenGateway from 'qwen-gateway'
 *   await host.register(qwenGateway, { prefix: '/qwen', cookies: [...] })
 *
 * Its decorators stay inside its own context; the host keeps its own error handler and names.
 */
import fp from 'fastify-plugin'
import { app } from './app.js'
import type { GatewayOptions } from './options.js'

const qwenGateway = fp<GatewayOptions>(async function qwenGateway (fastify, opts) {
  await app(fastify, opts)
}, { name: 'qwen-gateway', fastify: '5.x', encapsulate: true })

export default qwenGateway
export { buildServer, clientErrorResponse, qwenClientErrorHandler, qwenGatewayRoot, type BuildOptions } from './build.js'
export { requestIdFor } from '../plugins/request-id.js'
export { GatewayEvents, type GatewayEventMap, type CompletionEvent, type RequestEvent } from './events.js'
export type { GatewayOptions } from './options.js'
export { OptionsError } from './options.js'
export {
  AuthenticationError, GatewayError, InvalidRequestError, ModelNotFoundError, RouteNotFoundError,
  UnsupportedParameterError, UpstreamError, toOpenAIError,
} from './errors.js'
export { VERSION } from './version.js'
