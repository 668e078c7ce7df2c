import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import { createMediaResolver } from '../src/media/index.js'
import type { ResolvedModel } from '../src/models.js'
import type { PreparedChat } from '../src/openai/request.js'
import type { ChatMessage } from '../src/schemas.js'
import { visionModel } from '../src/turn/vision.js'

export interface MediaInputService {
  /**
   * The request's media, checked (URLs fetched) into `chat.attachments` before any identity is
   * leased, and the model that serves them: the vision fallback when `model` cannot see them. An
   * image or video generation model (`-image`, `-video`) takes no input media: nothing is fetched.
   */
  prepare: (chat: PreparedChat, messages: readonly ChatMessage[], model: ResolvedModel, signal: AbortSignal, log: FastifyBaseLogger) => Promise<ResolvedModel>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Media in requests (every face): attachments and the vision fallback. */
    qwenMediaInput: MediaInputService
  }
}

/** One resolver with its SSRF-guarded fetcher for every face, closed with the app. */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const input = createMediaResolver(cfg)
  fastify.addHook('onClose', async () => { await input.close() })
  fastify.decorate('qwenMediaInput', {
    prepare: async (chat, messages, model, signal, log) => {
      if (model.media === 'image' || model.media === 'video') return model
      chat.attachments = await input.resolver.attachments(messages, signal)
      if (signal.aborted) throw signal.reason
      return await visionModel(model, chat.attachments, {
        fallback: cfg.visionFallbackModel,
        resolve: async (name) => await fastify.qwenModels.resolve(name, { signal }),
        onFallback: (requested, fallback) => { log.info({ model: requested, fallback }, 'vision fallback: the model has no vision, the request carries an image') },
      })
    },
  } satisfies MediaInputService)
}, { name: 'qwen-media-input', fastify: '5.x', dependencies: ['qwen-config', 'qwen-models'] })
