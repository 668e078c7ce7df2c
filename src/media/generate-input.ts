/**
 * Bytes sent to the media endpoints (`/v1/images/edits`, `/v1/videos`) as an `Attachment`.
 * A minimal local image sniffer until the media-input work (`src/media/sniff.ts`) is on main; it
 * decides the type from the bytes only, never from the declared type.
 */
import { createHash } from 'node:crypto'
import { InvalidRequestError } from '../errors.js'
import type { Attachment } from './attachment.js'

const SIGNATURES: ReadonlyArray<[string, (b: Buffer) => boolean]> = [
  ['image/png', (b) => b.length > 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a],
  ['image/jpeg', (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['image/gif', (b) => b.length > 6 && /^GIF8[79]a$/.test(b.toString('latin1', 0, 6))],
  ['image/webp', (b) => b.length > 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP'],
  ['image/bmp', (b) => b.length > 14 && b.toString('latin1', 0, 2) === 'BM'],
]

/** The image type of `bytes`, or undefined. */
export function sniffImage (bytes: Buffer): string | undefined {
  return SIGNATURES.find(([, test]) => test(bytes))?.[0]
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
