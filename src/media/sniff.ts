/**
 * The type of a file, decided from its bytes (magic numbers), never from what the client declares:
 * a data URL's media type, a file name's extension and a server's `content-type` are all ignored.
 * Only the types the upstream accepts (PROTOCOL §1.8.4) are recognised.
 */
import type { AttachmentKind } from './attachment.js'

export type SniffedMime =
  | 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif' | 'image/bmp'
  | 'video/mp4' | 'video/webm'
  | 'audio/mpeg' | 'audio/wav'
  | 'application/pdf' | 'text/plain'

/** The kind of upstream file object each type becomes. */
export const KIND_OF: Readonly<Record<SniffedMime, AttachmentKind>> = {
  'image/png': 'image',
  'image/jpeg': 'image',
  'image/webp': 'image',
  'image/gif': 'image',
  'image/bmp': 'image',
  'video/mp4': 'video',
  'video/webm': 'video',
  'audio/mpeg': 'audio',
  'audio/wav': 'audio',
  'application/pdf': 'file',
  'text/plain': 'file',
}

/** File name extension for each type (names the gateway makes up). */
export const EXTENSION: Readonly<Record<SniffedMime, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/bmp': 'bmp',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'application/pdf': 'pdf',
  'text/plain': 'txt',
}

function ascii (b: Buffer, at: number, s: string): boolean {
  return b.length >= at + s.length && b.toString('latin1', at, at + s.length) === s
}

function startsWith (b: Buffer, bytes: readonly number[]): boolean {
  return b.length >= bytes.length && bytes.every((x, i) => b[i] === x)
}

/** A BMP file header (`BM`, reserved zeros) followed by a known DIB header size. */
function isBmp (b: Buffer): boolean {
  if (b.length < 26 || !ascii(b, 0, 'BM') || b.readUInt32LE(6) !== 0) return false
  return [12, 40, 52, 56, 64, 108, 124].includes(b.readUInt32LE(14))
}

/** ISO base media (`ftyp` box) whose major brand is not an audio-only or QuickTime one. */
function isMp4 (b: Buffer): boolean {
  if (b.length < 12 || !ascii(b, 4, 'ftyp')) return false
  const brand = b.toString('latin1', 8, 12)
  return !['M4A ', 'M4B ', 'M4P ', 'qt  '].includes(brand)
}

/** An EBML header whose doctype is `webm` (plain Matroska is not accepted). */
function isWebm (b: Buffer): boolean {
  return startsWith(b, [0x1a, 0x45, 0xdf, 0xa3]) && b.subarray(0, 64).includes('webm', 0, 'latin1')
}

/** An MPEG audio frame header: sync, a real layer, a valid bitrate and sample rate. */
function isMpegFrame (b: Buffer): boolean {
  if (b.length < 4 || b[0] !== 0xff || (b[1]! & 0xe0) !== 0xe0) return false
  const version = (b[1]! >> 3) & 0x03
  const layer = (b[1]! >> 1) & 0x03
  const bitrate = b[2]! >> 4
  const rate = (b[2]! >> 2) & 0x03
  return version !== 1 && layer !== 0 && bitrate !== 0x0f && rate !== 0x03
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Valid UTF-8 without NUL (the rule for text files). */
function isText (b: Buffer): boolean {
  if (b.length === 0 || b.includes(0)) return false
  try {
    UTF8.decode(b)
    return true
  } catch {
    return false
  }
}

/** The type of `bytes`, or `undefined` when they are none of the accepted types. */
export function sniff (bytes: Buffer): SniffedMime | undefined {
  const b = bytes
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png'
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'image/jpeg'
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'image/gif'
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'image/webp'
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE')) return 'audio/wav'
  if (isBmp(b)) return 'image/bmp'
  if (isMp4(b)) return 'video/mp4'
  if (isWebm(b)) return 'video/webm'
  if (ascii(b, 0, '%PDF-')) return 'application/pdf'
  if (ascii(b, 0, 'ID3') || isMpegFrame(b)) return 'audio/mpeg'
  if (isText(b)) return 'text/plain'
  return undefined
}

/** Which content part carries the bytes: each accepts its own types. */
export type PartKind = 'image_url' | 'input_audio' | 'video_url' | 'file'

/** The types each part accepts (`file` takes documents and, like the web app, any other media). */
export const ACCEPTED: Readonly<Record<PartKind, readonly SniffedMime[]>> = {
  image_url: ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp'],
  input_audio: ['audio/mpeg', 'audio/wav'],
  video_url: ['video/mp4', 'video/webm'],
  file: Object.keys(KIND_OF) as SniffedMime[],
}

/** `input_audio.format` → the type its bytes must have. */
export const AUDIO_FORMATS: Readonly<Record<string, SniffedMime>> = { mp3: 'audio/mpeg', wav: 'audio/wav' }

/** A short description of what a part accepts, for error messages. */
export function acceptedText (part: PartKind): string {
  return ACCEPTED[part].join(', ')
}
