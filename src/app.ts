/**
 * The gateway as one Fastify plugin: support plugins in dependency order, the OpenAI error
 * envelope for every error (Fastify's own included), then the routes.
 */
import cors from '@fastify/cors'
import type { FastifyPluginAsync } from 'fastify'
import accessLogPlugin from '../plugins/access-log.js'
import adminPlugin from '../plugins/admin.js'
import authPlugin from '../plugins/auth.js'
import chatDeletionPlugin from '../plugins/chat-deletion.js'
import completionsPlugin from '../plugins/completions.js'
import mediaPlugin from '../plugins/media.js'
import configPlugin from '../plugins/config.js'
import eventsPlugin from '../plugins/events.js'
import poolPlugin from '../plugins/identity-pool.js'
import modelsPlugin from '../plugins/models.js'
import requestIdPlugin from '../plugins/request-id.js'
import limitsPlugin from '../plugins/limits.js'
import mediaInputPlugin from '../plugins/media-input.js'
import metricsPlugin from '../plugins/metrics.js'
import openApiPlugin from '../plugins/openapi.js'
import pressurePlugin from '../plugins/pressure.js'
import readyChatsPlugin from '../plugins/ready-chats.js'
import lifecyclePlugin from '../plugins/request-lifecycle.js'
import storePlugin from '../plugins/shared-store.js'
import tokenRefresherPlugin from '../plugins/token-refresher.js'
import uploadPlugin from '../plugins/upload.js'
import upstreamPlugin from '../plugins/upstream.js'
import adminRoutes from '../routes/admin/index.js'
import chatCompletionsRoutes from '../routes/chat-completions.js'
import healthRoutes from '../routes/health.js'
import imagesRoutes from '../routes/images.js'
import messagesRoutes from '../routes/messages.js'
import metricsRoutes from '../routes/metrics.js'
import openApiRoutes from '../routes/openapi.js'
import readyRoutes from '../routes/ready.js'
import modelsRoutes from '../routes/models.js'
import refreshTokenRoutes from '../routes/refresh-token.js'
import responsesRoutes from '../routes/responses.js'
import rootRoutes from '../routes/root.js'
import videosRoutes from '../routes/videos.js'
import { RouteNotFoundError, toOpenAIError } from './errors.js'
import type { GatewayOptions } from './options.js'
import { createValidatorCompiler } from './validation.js'

export const app: FastifyPluginAsync<GatewayOptions> = async (fastify, opts) => {
  fastify.setValidatorCompiler(createValidatorCompiler())
  await fastify.register(configPlugin, opts)
  const cfg = fastify.qwenConfig
  await fastify.register(requestIdPlugin)
  await fastify.register(cors, {
    origin: cfg.corsOrigins === '*' ? true : cfg.corsOrigins,
    methods: ['GET', 'POST', 'OPTIONS'],
    exposedHeaders: ['x-request-id', 'retry-after', 'x-should-retry'],
    maxAge: 600,
  })
  await fastify.register(eventsPlugin)
  await fastify.register(accessLogPlugin)
  await fastify.register(lifecyclePlugin)
  await fastify.register(pressurePlugin)
  await fastify.register(upstreamPlugin)
  await fastify.register(storePlugin)
  await fastify.register(uploadPlugin)
  await fastify.register(poolPlugin)
  await fastify.register(tokenRefresherPlugin)
  await fastify.register(modelsPlugin)
  await fastify.register(mediaInputPlugin)
  await fastify.register(authPlugin)
  await fastify.register(limitsPlugin)
  await fastify.register(completionsPlugin)
  await fastify.register(mediaPlugin)
  await fastify.register(chatDeletionPlugin)
  await fastify.register(readyChatsPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(openApiPlugin)
  if (cfg.adminUi) await fastify.register(adminPlugin)

  fastify.setErrorHandler((err, request, reply) => {
    const { status, body, headers } = toOpenAIError(err)
    if (status >= 500) request.log.error({ err }, 'request failed')
    else request.log.info({ status, code: body.error.code, param: body.error.param, error: body.error.message }, 'request rejected')
    return reply.code(status).headers(headers).send(body)
  })
  fastify.setNotFoundHandler((request, reply) => {
    const { status, body } = toOpenAIError(new RouteNotFoundError(request.method, request.url))
    return reply.code(status).send(body)
  })

  await fastify.register(rootRoutes)
  await fastify.register(healthRoutes)
  await fastify.register(modelsRoutes)
  await fastify.register(chatCompletionsRoutes)
  await fastify.register(messagesRoutes)
  await fastify.register(responsesRoutes)
  await fastify.register(refreshTokenRoutes)
  await fastify.register(imagesRoutes)
  await fastify.register(videosRoutes)
  await fastify.register(readyRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(openApiRoutes)
  if (cfg.adminUi) await fastify.register(adminRoutes)
}
