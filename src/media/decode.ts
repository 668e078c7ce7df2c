/**
 * From a part's bytes to an `Attachment`: base64 decoding (strict), the size cap, and the type
 * check by sniffing (the bytes must be what the part claims: an `image_url` holds an image, an
 * `input_audio` with `format: "mp3"` holds MP3, …). Every refusal is a 400 naming the part.
 */
import { createHash } from 'node:crypto'
import type { Attachment } from './attachment.js'
import { cleanFilename, partError, type MediaPart } from './parts.js'
import { ACCEPTED, AUDIO_FORMATS, EXTENSION, KIND_OF, acceptedText, sniff, type SniffedMime } from './sniff.js'

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/

/** The base64 payload of a `data:` URL, or the text itself when it is bare base64. */
function base64Of (m: MediaPart, text: string): string {
  if (!/^data:/i.test(text)) return text
  const comma = text.indexOf(',')
  const meta = comma < 0 ? '' : text.slice(5, comma)
  if (comma < 0 || !/;base64$/i.test(meta)) throw partError(m.part, m.param, 'a data: URL must be base64-encoded (`data:<type>;base64,<data>`)')
  return text.slice(comma + 1)
}

/**
 * Decode strict base64 (standard or URL-safe alphabet, padding optional, line breaks tolerated).
 * The size is checked before decoding, so an oversized payload is never held twice.
 */
export function decodeBase64 (m: MediaPart, text: string, maxBytes: number): Buffer {
  const s = base64Of(m, text).replace(/\s+/g, '')
  if (!BASE64.test(s) || s.length % 4 === 1) throw partError(m.part, m.param, 'the data is not valid base64')
  const size = Math.floor(s.replace(/=+$/, '').length * 3 / 4)
  if (size === 0) throw partError(m.part, m.param, 'the file is empty')
  if (size > maxBytes) throw partError(m.part, m.param, `the file is ${size} bytes, larger than the limit of ${maxBytes} bytes (UPLOAD_MAX_BYTES)`)
  return Buffer.from(s, 'base64')
}

/** The sniffed type, if this part accepts it; otherwise a 400 saying what the bytes are and what is accepted. */
function checkedType (m: MediaPart, bytes: Buffer): SniffedMime {
  const mime = sniff(bytes)
  if (!mime) throw partError(m.part, m.param, `the bytes are not a supported file type (accepted here: ${acceptedText(m.part)})`)
  if (!ACCEPTED[m.part].includes(mime)) throw partError(m.part, m.param, `the bytes are ${mime}, which \`${m.part}\` does not take (accepted: ${acceptedText(m.part)})`)
  if (m.format !== undefined && AUDIO_FORMATS[m.format] !== mime) {
    throw partError(m.part, m.param, `\`input_audio.format\` is \`${m.format}\` but the bytes are ${mime}`)
  }
  return mime
}

/** The client's name with the sniffed type's extension (text files keep theirs: .md, .csv, …), or a made-up one. */
function filenameFor (m: MediaPart, mime: SniffedMime, sha256: string): string {
  const ext = EXTENSION[mime]
  const given = m.filename ? cleanFilename(m.filename) : ''
  if (!given) return `${KIND_OF[mime]}-${sha256.slice(0, 12)}.${ext}`
  const dot = given.lastIndexOf('.')
  if (mime === 'text/plain' && dot > 0) return given
  return `${dot > 0 ? given.slice(0, dot) : given}.${ext}`
}

/**
 * Check `bytes` for part `m` (emptiness, type) and make the attachment. The size cap was applied
 * before: by `decodeBase64`, or by the fetcher while reading.
 */
export function attachmentOf (m: MediaPart, bytes: Buffer): Attachment {
  if (bytes.length === 0) throw partError(m.part, m.param, 'the file is empty')
  const mime = checkedType(m, bytes)
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  return { kind: KIND_OF[mime], mime, bytes, filename: filenameFor(m, mime, sha256), sha256, param: m.param }
}
