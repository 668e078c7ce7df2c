import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { InvalidRequestError } from '../src/errors.js'
import { imageAttachment } from '../src/media/generate-input.js'
import { generateImages, type ImagesRequest } from '../src/media/generate-images.js'
import type { Attachment } from '../src/media/attachment.js'
import { ErrorResponses } from '../src/schemas.js'

const nullable = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]))

export const ImageGenerationSchema = Type.Object({
  prompt: Type.String({ minLength: 1 }),
  model: nullable(Type.String()),
  n: nullable(Type.Integer()),
  size: nullable(Type.String()),
  response_format: nullable(Type.String()),
}, { additionalProperties: true })

const ImagesResponseSchema = Type.Object({
  created: Type.Integer(),
  data: Type.Array(Type.Object({ url: Type.Optional(Type.String()), b64_json: Type.Optional(Type.String()) })),
})

/** Multipart limits of `/v1/images/edits`: up to 4 images of `UPLOAD_MAX_BYTES` each, a few short fields. */
export function editLimits (uploadMaxBytes: number): { fileSize: number; files: number; fields: number; fieldSize: number; parts: number } {
  return { fileSize: uploadMaxBytes, files: 4, fields: 16, fieldSize: 64 * 1024, parts: 24 }
}

/**
 * `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart, as the `openai`
 * SDK's `images.edit` sends it: `image` or `image[]`, `prompt`, `n`, `size`, `response_format`,
 * `model`). `@fastify/multipart` is registered in this encapsulated plugin unless the embedding
 * app registered it already; the limits are passed on each request either way.
 */
const images: FastifyPluginAsyncTypebox = async (fastify) => {
  const cfg = fastify.qwenConfig
  const EDIT_LIMITS = editLimits(cfg.uploadMaxBytes)
  if (!fastify.hasContentTypeParser('multipart/form-data') || !fastify.hasRequestDecorator('parts')) {
    await fastify.register(multipart, { limits: EDIT_LIMITS })
  }
  const deps = () => ({
    gen: fastify.qwenMedia.generator, client: fastify.qwenUpstream, models: fastify.qwenModels, now: cfg.now, maxImageBytes: cfg.maxBufferBytes,
  })

  fastify.post('/v1/images/generations', {
    bodyLimit: 1024 * 1024,
    config: { qwenAuth: 'api' },
    schema: { body: ImageGenerationSchema, response: { 200: ImagesResponseSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    const scope = fastify.qwenLifecycle.begin(reply)
    try {
      const b = request.body
      return await generateImages(deps(), {
        caller: request.qwenCaller!, prompt: b.prompt, model: b.model ?? undefined, n: b.n ?? undefined, size: b.size ?? undefined,
        responseFormat: b.response_format ?? undefined, images: [], requestId: request.qwenRequestId, signal: scope.signal,
      })
    } catch (err) {
      throw scope.reason()?.toError() ?? err
    } finally {
      scope.end()
    }
  })

  fastify.post('/v1/images/edits', {
    config: { qwenAuth: 'api' },
    schema: { response: { 200: ImagesResponseSchema, ...ErrorResponses } },
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new InvalidRequestError('Send the edit as multipart/form-data (image, prompt, …)', null, 'invalid_content_type')
    const scope = fastify.qwenLifecycle.begin(reply)
    try {
      const fields: Record<string, string> = {}
      const imgs: Attachment[] = []
      for await (const part of request.parts({ limits: EDIT_LIMITS })) {
        if (part.type === 'file') {
          if (part.fieldname !== 'image' && part.fieldname !== 'image[]') {
            part.file.resume()
            throw new InvalidRequestError(`Unexpected file field \`${part.fieldname.slice(0, 40)}\`; send the images as \`image\` or \`image[]\``, part.fieldname.slice(0, 40))
          }
          const bytes = await part.toBuffer()
          imgs.push(imageAttachment(bytes, part.filename, `image[${imgs.length}]`))
        } else if (typeof part.value === 'string') {
          fields[part.fieldname] = part.value
        }
      }
      if (imgs.length === 0) throw new InvalidRequestError('An edit needs an image (`image` or `image[]`)', 'image')
      if (!fields.prompt) throw new InvalidRequestError('prompt is required', 'prompt')
      const n = fields.n === undefined ? undefined : Number(fields.n)
      const r: ImagesRequest = {
        caller: request.qwenCaller!, prompt: fields.prompt, model: fields.model, n, size: fields.size, responseFormat: fields.response_format,
        images: imgs, requestId: request.qwenRequestId, signal: scope.signal,
      }
      return await generateImages(deps(), r)
    } catch (err) {
      const e = err as { code?: string; part?: unknown }
      if (e?.code === 'FST_REQ_FILE_TOO_LARGE') throw new InvalidRequestError(`An image is larger than ${EDIT_LIMITS.fileSize} bytes`, 'image', 'file_too_large')
      if (e?.code === 'FST_FILES_LIMIT' || e?.code === 'FST_PARTS_LIMIT' || e?.code === 'FST_FIELDS_LIMIT') throw new InvalidRequestError(`Too many parts: at most ${EDIT_LIMITS.files} images`, 'image', 'invalid_value')
      throw scope.reason()?.toError() ?? err
    } finally {
      scope.end()
    }
  })
}

export default images
