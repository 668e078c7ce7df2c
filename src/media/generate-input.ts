/**
 * Bytes sent to the media endpoints (`/v1/images/edits`, `/v1/videos`) as an image `Attachment`,
 * typed by the same sniffer as chat media (`src/media/sniff.ts`): from the bytes only, never from
 * the declared type.
 */
import { createHash } from 'node:crypto'
import { InvalidRequestError } from '../errors.js'
import type { Attachment } from './attachment.js'
import { ACCEPTED, sniff } from './sniff.js'

/** The image type of `bytes`, or undefined (anything but the accepted image types). */
export function sniffImage (bytes: Buffer): string | undefined {
  const mime = sniff(bytes)
  return mime !== undefined && ACCEPTED.image_url.includes(mime) ? mime : undefined
}

/** An image attachment from uploaded bytes, or 400 `invalid_image` naming `param`. */
export function imageAttachment (bytes: Buffer, filename: string | undefined, param: string): Attachment {
  if (bytes.length === 0) throw new InvalidRequestError(`${param} is empty`, param, 'invalid_image')
  const mime = sniffImage(bytes)
  if (!mime) throw new InvalidRequestError(`${param} is not a PNG, JPEG, WebP, GIF or BMP image`, param, 'invalid_image')
  return {
    kind: 'image', mime, bytes, filename: filename || `image.${mime.slice(6)}`,
    sha256: createHash('sha256').update(bytes).digest('hex'), param,
  }
}
