/**
 * The attachments of a chat request: which media parts are attached, their bytes (decoded inline,
 * or fetched by the gateway), checked and typed. Runs after `prepareChat` (which has already read
 * every part's shape) and before any identity is leased: every refusal is a 400 naming the part,
 * and nothing reaches the upstream.
 *
 * Which parts are attached: every audio, video and file part, and the most recent `MAX_IMAGES`
 * images of the conversation (the history's images are part of the folded conversation). An older
 * image is known to the model only by its `[image]` marker in the text; its bytes are not even
 * decoded. The message being answered (the last user message) may hold at most `MAX_IMAGES` images.
 */
import { InvalidRequestError } from '../errors.js'
import type { ChatMessage } from '../schemas.js'
import type { Attachment } from './attachment.js'
import { attachmentOf, decodeBase64 } from './decode.js'
import { MediaFetchError, type MediaFetcher } from './fetch.js'
import { isMediaPart, partError, readMediaPart, type MediaPart } from './parts.js'

/** Images attached per request: the most recent ones. */
export const MAX_IMAGES = 8
/** Attachments per request, all kinds together. */
export const MAX_ATTACHMENTS = 16
/** URLs fetched at the same time for one request. */
export const FETCH_CONCURRENCY = 4

/** The media parts that become attachments, in conversation order. */
export function attachedParts (messages: readonly ChatMessage[]): MediaPart[] {
  const found: Array<{ m: MediaPart; message: number }> = []
  let lastUser = -1
  messages.forEach((msg, i) => {
    if (msg.role === 'user') lastUser = i
    if (!Array.isArray(msg.content)) return
    msg.content.forEach((p, j) => {
      if (isMediaPart(p.type)) found.push({ m: readMediaPart(p as Record<string, unknown>, `messages[${i}].content[${j}]`), message: i })
    })
  })
  const current = found.filter((f) => f.message === lastUser && f.m.part === 'image_url')
  if (current.length > MAX_IMAGES) {
    throw partError('image_url', current[MAX_IMAGES]!.m.param, `a message may carry at most ${MAX_IMAGES} images`)
  }
  let images = 0
  const kept: MediaPart[] = []
  for (let k = found.length - 1; k >= 0; k--) {
    const m = found[k]!.m
    if (m.part === 'image_url' && ++images > MAX_IMAGES) continue
    kept.unshift(m)
  }
  if (kept.length > MAX_ATTACHMENTS) {
    throw new InvalidRequestError(`messages carry ${kept.length} files (images, audio, video, documents); at most ${MAX_ATTACHMENTS} are accepted`, 'messages', 'invalid_file')
  }
  return kept
}

/** A fetch failure as the 400 the client sees, naming the part. */
function fetchRefusal (m: MediaPart, err: MediaFetchError): InvalidRequestError {
  if (err.reason === 'forbidden' || err.reason === 'scheme') {
    return partError(m.part, m.param, `the URL was refused: ${err.message} (media URLs must point to public addresses; an operator can allow hosts with MEDIA_FETCH_ALLOW)`)
  }
  return partError(m.part, m.param, `the URL could not be fetched: ${err.message}`)
}

export interface MediaResolverOptions {
  /** `UPLOAD_MAX_BYTES`. */
  maxBytes: number
  /** All of one request's attachments together (`BODY_LIMIT_BYTES`): URLs could otherwise add up to far more than any body. */
  maxTotalBytes?: number
  fetcher: MediaFetcher
}

export class MediaResolver {
  constructor (private readonly o: MediaResolverOptions) {}

  /**
   * The request's attachments, in conversation order. Inline parts are decoded and checked first
   * (synchronously), then URLs are fetched, a few at a time; the first failure stops the others.
   * When `signal` aborts (client gone, request timeout), its reason is thrown.
   */
  async attachments (messages: readonly ChatMessage[], signal: AbortSignal): Promise<Attachment[]> {
    const parts = attachedParts(messages)
    let total = 0
    const counted = (m: MediaPart, a: Attachment): Attachment => {
      total += a.bytes.length
      const cap = this.o.maxTotalBytes
      if (cap !== undefined && total > cap) {
        throw new InvalidRequestError(`the request's files add up to more than ${cap} bytes (BODY_LIMIT_BYTES); send fewer or smaller files`, m.param, 'invalid_file')
      }
      return a
    }
    const out = parts.map((m) => ('inline' in m.source ? counted(m, attachmentOf(m, decodeBase64(m, m.source.inline, this.o.maxBytes))) : undefined))
    const queue = parts.flatMap((m, i) => ('url' in m.source ? [{ m, i, url: m.source.url }] : []))
    if (queue.length > 0) {
      const ctl = new AbortController()
      const onAbort = (): void => ctl.abort(signal.reason)
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
      const worker = async (): Promise<void> => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          try {
            out[job.i] = counted(job.m, attachmentOf(job.m, (await this.o.fetcher.fetch(job.url, ctl.signal)).bytes))
          } catch (err) {
            const e = err instanceof MediaFetchError ? fetchRefusal(job.m, err) : err
            if (!ctl.signal.aborted) ctl.abort(e)
            throw e
          }
        }
      }
      try {
        await Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, queue.length) }, worker))
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    }
    return out as Attachment[]
  }
}
