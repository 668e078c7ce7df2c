import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { InvalidRequestError } from '../src/errors.js'
import type { Attachment } from '../src/media/attachment.js'
import { imageAttachment } from '../src/media/generate-input.js'
import { videoObject } from '../src/media/video-api.js'
import { ErrorResponses } from '../src/schemas.js'

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) })
const VideoSchema = Type.Object({ id: Type.String(), object: Type.Literal('video'), status: Type.String() }, { additionalProperties: true })
/** Multipart limits of `POST /v1/videos`: one reference image of up to `UPLOAD_MAX_BYTES` and a few fields. */
function videoLimits (uploadMaxBytes: number): { fileSize: number; files: number; fields: number; fieldSize: number; parts: number } {
  return { fileSize: uploadMaxBytes, files: 1, fields: 16, fieldSize: 64 * 1024, parts: 20 }
}

/**
 * The OpenAI Videos API: `POST /v1/videos` (JSON, or multipart as the `openai` SDK sends it, with an
 * optional `input_reference` image), `GET /v1/videos/:id`, `GET /v1/videos/:id/content` (the MP4
 * bytes streamed from the upstream URL). `@fastify/multipart` is registered here unless the
 * embedding app registered it already; the limits are passed on each request.
 */
const videos: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  const LIMITS = videoLimits(cfg.uploadMaxBytes)
  if (!fastify.hasContentTypeParser('multipart/form-data') || !fastify.hasRequestDecorator('parts')) {
    await fastify.register(multipart, { limits: LIMITS })
  }

  fastify.post('/v1/videos', {
    bodyLimit: 1024 * 1024,
    config: { qwenAuth: 'api' },
    schema: { response: { 200: VideoSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    const scope = fastify.qwenLifecycle.begin(reply)
    try {
      const fields: Record<string, unknown> = {}
      let reference: Attachment | undefined
      if (request.isMultipart()) {
        for await (const part of request.parts({ limits: LIMITS })) {
          if (part.type === 'file') {
            const bytes = await part.toBuffer()
            if (part.fieldname !== 'input_reference') throw new InvalidRequestError(`Unexpected file field \`${part.fieldname.slice(0, 40)}\``, part.fieldname.slice(0, 40))
            reference = imageAttachment(bytes, part.filename, 'input_reference')
          } else {
            fields[part.fieldname] = part.value
          }
        }
      } else if (request.body && typeof request.body === 'object') {
        Object.assign(fields, request.body)
      } else {
        throw new InvalidRequestError('Send a JSON object or multipart/form-data with at least `prompt`', null)
      }
      const str = (k: string): string | undefined => {
        const v = fields[k]
        if (v === undefined || v === null) return undefined
        if (typeof v === 'number' && k === 'seconds') return String(v)
        if (typeof v !== 'string') throw new InvalidRequestError(`${k} must be a string`, k, 'invalid_type')
        return v
      }
      const job = await fastify.qwenMedia.videos.create({
        caller: request.qwenCaller!, keyName: request.qwenKeyName, prompt: str('prompt'), model: str('model'), size: str('size'), seconds: str('seconds'), reference,
        requestId: request.qwenRequestId, signal: scope.signal,
      })
      return videoObject(job)
    } catch (err) {
      if ((err as { code?: string })?.code === 'FST_REQ_FILE_TOO_LARGE') throw new InvalidRequestError(`input_reference is larger than ${LIMITS.fileSize} bytes`, 'input_reference', 'file_too_large')
      throw scope.reason()?.toError() ?? err
    } finally {
      scope.end()
    }
  })

  fastify.get('/v1/videos/:id', {
    config: { qwenAuth: 'api' },
    schema: { params: IdParams, response: { 200: VideoSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    const scope = fastify.qwenLifecycle.begin(reply)
    try {
      return videoObject(await fastify.qwenMedia.videos.retrieve(request.params.id, request.qwenCaller!, scope.signal, request.qwenKeyName))
    } catch (err) {
      throw scope.reason()?.toError() ?? err
    } finally {
      scope.end()
    }
  })

  fastify.get('/v1/videos/:id/content', {
    config: { qwenAuth: 'api' },
    schema: { params: IdParams },
  }, async (request, reply) => {
    const scope = fastify.qwenLifecycle.begin(reply, cfg.videoTimeoutMs)
    try {
      const job = await fastify.qwenMedia.videos.retrieve(request.params.id, request.qwenCaller!, scope.signal, request.qwenKeyName)
      if (job.status !== 'completed') {
        throw new InvalidRequestError(job.status === 'failed' ? `The video failed: ${job.error?.message ?? 'unknown error'}` : 'The video is not ready yet; retrieve it until its status is `completed`', 'video_id', 'video_not_ready')
      }
      const res = await fastify.qwenUpstream.getMedia(job.url!, { signal: scope.signal, proxyUrl: job.ref.proxyUrl })
      const len = res.headers['content-length']
      reply.header('content-type', 'video/mp4')
      if (typeof len === 'string') reply.header('content-length', len)
      reply.raw.once('close', () => { if (!res.body.destroyed) res.body.destroy() })
      return reply.send(res.body)
    } catch (err) {
      throw scope.reason()?.toError() ?? err
    } finally {
      scope.end()
    }
  })
}

export default videos
