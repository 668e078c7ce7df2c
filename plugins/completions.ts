import fp from 'fastify-plugin'
import { ChatLifecycle } from '../src/chats.js'
import { CompletionRunner } from '../src/completion.js'
import { credentialsOf } from '../src/pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs completions; `chats` is the chat lifecycle service every upstream chat is created through. */
    qwenCompletions: { runner: CompletionRunner; chats: ChatLifecycle }
  }
}

/** The completion runner and the chat lifecycle service it creates chats through. */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const pool = fastify.qwenPool
  const chats = new ChatLifecycle(fastify.qwenUpstream, fastify.qwenEvents, (id) => {
    const i = pool.get(id)
    return i?.token ? { cred: credentialsOf(i), proxyUrl: i.proxyUrl } : undefined
  })
  fastify.decorate('qwenCompletions', {
    runner: new CompletionRunner({
      client: fastify.qwenUpstream,
      chats,
      pool: fastify.qwenPool,
      tokens: fastify.qwenTokens,
      events: fastify.qwenEvents,
      thinkingOutput: cfg.thinkingOutput,
      maxRetries: cfg.maxRetries,
      keepAliveIntervalMs: cfg.keepAliveIntervalMs,
      maxBufferBytes: cfg.maxBufferBytes,
      now: cfg.now,
      uploader: fastify.qwenUpload,
    }),
    chats,
  })
}, { name: 'qwen-completions', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events', 'qwen-upstream', 'qwen-identity-pool', 'qwen-token-refresher', 'qwen-upload'] })
