import fp from 'fastify-plugin'
import { MediaGenerator } from '../src/media/generate.js'
import { MediaChat } from '../src/media/generate-chat.js'
import { VideoApi } from '../src/media/video-api.js'
import { MemoryVideoJobStore } from '../src/media/video-jobs.js'
import { TokenCipher } from '../src/state.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Media generation: `generator` (images, video tasks, under a lease with failover), `chat` (the
     * `-image`/`-image_edit`/`-video` chat models) and `videos` (the `/v1/videos` jobs, kept in a
     * bounded, TTL'd job store behind a small interface; in the shared store, sealed, with one).
     */
    qwenMedia: { generator: MediaGenerator; chat: MediaChat; videos: VideoApi }
  }
}

/** Video jobs are kept this long after their last change (a day) and at most this many. */
const JOB_TTL_MS = 24 * 3_600_000
const MAX_JOBS = 1000

export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const generator = new MediaGenerator({
    client: fastify.qwenUpstream,
    chats: fastify.qwenCompletions.chats,
    pool: fastify.qwenPool,
    tokens: fastify.qwenTokens,
    uploader: fastify.qwenUpload,
    maxRetries: cfg.maxRetries,
    onFailover: (requestId, identity, err, attempt) => {
      fastify.qwenEvents.emit('failover', { requestId, identity, code: err.code, error: err.message, attempt })
    },
  })
  const local = new MemoryVideoJobStore({ ttlMs: JOB_TTL_MS, maxEntries: MAX_JOBS, now: cfg.now })
  // With a shared store, a job created through one replica is polled and downloaded through any.
  const shared = fastify.qwenStore.videoJobs
  const jobs = shared && cfg.stateSecret
    ? shared.open({ sealer: new TokenCipher(cfg.stateSecret, `qwen-gateway video jobs ${cfg.redisNamespace}`), local, ttlMs: JOB_TTL_MS })
    : local
  fastify.decorate('qwenMedia', {
    generator,
    chat: new MediaChat({ gen: generator, keepAliveIntervalMs: cfg.keepAliveIntervalMs, videoPollIntervalMs: cfg.videoPollIntervalMs }),
    videos: new VideoApi({
      gen: generator, models: fastify.qwenModels, now: cfg.now, videoTimeoutMs: cfg.videoTimeoutMs, jobs,
    }),
  })
}, { name: 'qwen-media', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events', 'qwen-store', 'qwen-upstream', 'qwen-identity-pool', 'qwen-token-refresher', 'qwen-upload', 'qwen-completions', 'qwen-models'] })
