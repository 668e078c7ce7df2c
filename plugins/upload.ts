import fp from 'fastify-plugin'
import type { AttachmentUploader } from '../src/media/attachment.js'
import { MemoryUploadCache, SharedUploadCache } from '../src/media/upload-cache.js'
import { Uploader } from '../src/media/uploader.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Puts attachments on the upstream for the identity that serves the request (STS grant, signed
     * object PUT, the 2026 parse step for documents) and returns the upstream `files[]` objects, one
     * per attachment. Identical bytes are uploaded once per identity while the cache holds them.
     */
    qwenUpload: AttachmentUploader
  }
}

/** The upload plugin: an `Uploader` over the upstream client and an in-memory upload cache. */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const local = new MemoryUploadCache({ ttlMs: cfg.uploadCacheTtlMs, now: cfg.now })
  // With a shared store, bytes uploaded through another replica are not uploaded again.
  const shared = fastify.qwenStore.uploads
  const cache = shared ? new SharedUploadCache(shared, local, cfg.uploadCacheTtlMs) : local
  fastify.decorate('qwenUpload', new Uploader({ client: fastify.qwenUpstream, cache, now: cfg.now, parsePoll: { intervalMs: 300, attempts: 200 },
    onUpload: (e) => { fastify.qwenEvents.emit('upload', e) },
  }))
}, { name: 'qwen-upload', fastify: '5.x', dependencies: ['qwen-config', 'qwen-upstream', 'qwen-events', 'qwen-store'] })
