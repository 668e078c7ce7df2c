/**
 * The OpenAI Images API on top of the generator: `n` upstream generations (each under its own lease),
 * answered as URLs (default) or base64 (the gateway downloads each image). Shared by
 * `/v1/images/generations` and `/v1/images/edits`.
 */
import { InvalidRequestError, UpstreamError } from '../errors.js'
import { mediaVariant, type ModelCatalog, type ResolvedModel } from '../models.js'
import type { Caller } from '../turn/lease.js'
import type { UpstreamClient } from '../upstream/client.js'
import type { Attachment } from './attachment.js'
import { ratioOf } from './generate-chat.js'
import type { MediaGenerator } from './generate.js'

/** The default model of the media endpoints when the request names none. */
export const DEFAULT_MEDIA_MODEL = 'qwen3-max'

export interface ImagesRequest {
  caller: Caller
  prompt: string
  model: string | undefined
  n: number | undefined
  size: string | undefined
  responseFormat: string | undefined
  /** Edits: the images to edit. */
  images: Attachment[]
  requestId: string
  signal: AbortSignal
}

export interface ImagesResponse {
  created: number
  data: Array<{ url: string } | { b64_json: string }>
}

export interface ImagesDeps {
  gen: MediaGenerator
  client: UpstreamClient
  models: ModelCatalog
  now: () => number
  /** Largest image the gateway downloads for `b64_json`. */
  maxImageBytes: number
}

/** The requested model as its generation variant (`qwen3-max` → `qwen3-max-image`), or 400/404. */
export async function mediaModel (models: ModelCatalog, name: string | undefined, variant: 'image' | 'image_edit' | 'video', signal: AbortSignal): Promise<ResolvedModel> {
  const requested = name || DEFAULT_MEDIA_MODEL
  const suffix = variant === 'image' ? '-image' : variant === 'video' ? '-video' : '-image_edit'
  const named = await models.resolve(requested, { signal }).catch(() => undefined)
  if (named?.media === variant) return named
  const mv = mediaVariant(requested)
  // An image model named on the edits endpoint (or the other way round): its other image variant.
  if (mv && named?.media && named.media !== 'video' && variant !== 'video') return models.resolve(mv.base + suffix, { signal }).then((m) => ({ ...m, requested }))
  if (named?.media) throw new InvalidRequestError(`The model \`${requested}\` generates ${named.media === 'video' ? 'videos' : 'images'}; use a base model or its ${suffix} variant here`, 'model', 'invalid_value')
  return models.resolve(requested + suffix, { signal }).then((m) => ({ ...m, requested }))
}

async function download (client: UpstreamClient, url: string, max: number, signal: AbortSignal): Promise<string> {
  const res = await client.getMedia(url, { signal })
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length
    if (size > max) {
      res.body.destroy()
      throw new UpstreamError('limit', `A generated image is larger than ${max} bytes`)
    }
    chunks.push(c)
  }
  return Buffer.concat(chunks, size).toString('base64')
}

export async function generateImages (d: ImagesDeps, r: ImagesRequest): Promise<ImagesResponse> {
  const n = r.n ?? 1
  if (!Number.isInteger(n) || n < 1 || n > 4) throw new InvalidRequestError('n must be an integer from 1 to 4', 'n')
  const format = r.responseFormat ?? 'url'
  if (format !== 'url' && format !== 'b64_json') throw new InvalidRequestError('response_format must be `url` or `b64_json`', 'response_format')
  if (!r.prompt.trim()) throw new InvalidRequestError('prompt must not be empty', 'prompt')
  const size = ratioOf(r.size)
  const model = await mediaModel(d.models, r.model, r.images.length ? 'image_edit' : 'image', r.signal)
  const req = { caller: r.caller, model: model.base, prompt: r.prompt, size, attachments: r.images, requestId: r.requestId, signal: r.signal }
  const urls = await Promise.all(Array.from({ length: n }, async () => (await d.gen.image(req)).url))
  const data = format === 'url'
    ? urls.map((url) => ({ url }))
    : await Promise.all(urls.map(async (url) => ({ b64_json: await download(d.client, url, d.maxImageBytes, r.signal) })))
  return { created: Math.floor(d.now() / 1000), data }
}
