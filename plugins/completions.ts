import fp from 'fastify-plugin'
import { CompletionRunner, RequestAborted } from '../src/completion.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs completions; `live` holds the abort controllers of requests in progress. */
    qwenCompletions: { runner: CompletionRunner; live: Set<AbortController> }
  }
}

/** The completion runner, and the close path for streams still open when the app shuts down. */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const live = new Set<AbortController>()
  fastify.decorate('qwenCompletions', {
    runner: new CompletionRunner({
      client: fastify.qwenUpstream,
      pool: fastify.qwenPool,
      tokens: fastify.qwenTokens,
      thinkingOutput: cfg.thinkingOutput,
      maxRetries: cfg.maxRetries,
      keepAliveIntervalMs: cfg.keepAliveIntervalMs,
      maxBufferBytes: cfg.maxBufferBytes,
      now: cfg.now,
    }),
    live,
  })
  fastify.addHook('preClose', async () => {
    for (const ac of live) ac.abort(new RequestAborted('shutdown'))
  })
}, { name: 'qwen-completions', fastify: '5.x', dependencies: ['qwen-config', 'qwen-upstream', 'qwen-identity-pool', 'qwen-token-refresher'] })
