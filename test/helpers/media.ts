/** Media bytes and attachments for the upload and media tests. */
import { createHash } from 'node:crypto'
import type { Attachment } from '../../src/media/attachment.js'

/** A valid 1×1 baseline JPEG. */
export const JPEG_1PX = Buffer.from(
  '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=', 'base64')

export function attachment (bytes: Buffer, mime: string, kind: Attachment['kind'] = 'image', filename = `upload.${mime.split('/')[1]}`): Attachment {
  return { kind, mime, bytes, filename, sha256: createHash('sha256').update(bytes).digest('hex'), param: 'messages[0].content[1]' }
}

