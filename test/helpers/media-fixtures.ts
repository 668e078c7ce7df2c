/** Small real files (or their real headers) for the media tests. */

/** A complete 1×1 PNG. */
export const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64')
/** A complete 1×1 baseline JPEG (JFIF). */
export const JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=',
  'base64',
)
/** A complete 1×1 GIF89a. */
export const GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64')
/** A complete 1×1 lossless WebP. */
export const WEBP = Buffer.from('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==', 'base64')

/** A 1×1 24-bit BMP (BITMAPINFOHEADER). */
export function bmp (): Buffer {
  const b = Buffer.alloc(58)
  b.write('BM', 0, 'latin1')
  b.writeUInt32LE(58, 2)
  b.writeUInt32LE(54, 10)
  b.writeUInt32LE(40, 14)
  b.writeInt32LE(1, 18)
  b.writeInt32LE(1, 22)
  b.writeUInt16LE(1, 26)
  b.writeUInt16LE(24, 28)
  return b
}
export const BMP = bmp()

/** The start of an MP4 (an `ftyp` box, brand isom). */
export const MP4 = Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypisom\0\0\x02\0isomiso2avc1mp41', 'latin1'), Buffer.alloc(16)])
/** The start of an M4A (audio-only MP4): not a video. */
export const M4A = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypM4A \0\0\0\0M4A mp42', 'latin1'), Buffer.alloc(8)])
/** The start of a WebM (EBML header, doctype webm). */
export const WEBM = Buffer.from('1a45dfa39f4286810142f7810142f2810442f381084282847765626d4287810442858102', 'hex')
/** The start of a Matroska file (EBML, doctype matroska): not accepted. */
export const MKV = Buffer.from('1a45dfa3a34286810142f7810142f2810442f381084282886d6174726f736b61', 'hex')
/** An MP3 with an ID3v2 tag. */
export const MP3_ID3 = Buffer.concat([Buffer.from('ID3\x04\0\0\0\0\0\0', 'latin1'), Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(64)])
/** An MP3 that starts with a frame (MPEG-1 layer III, 128 kbit/s, 44.1 kHz). */
export const MP3_FRAME = Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(64)])

/** A valid, silent WAV (8 samples, 8 kHz mono 8-bit). */
export function wav (): Buffer {
  const b = Buffer.alloc(44 + 8, 0x80)
  b.write('RIFF', 0, 'latin1')
  b.writeUInt32LE(36 + 8, 4)
  b.write('WAVEfmt ', 8, 'latin1')
  b.writeUInt32LE(16, 16)
  b.writeUInt16LE(1, 20)
  b.writeUInt16LE(1, 22)
  b.writeUInt32LE(8000, 24)
  b.writeUInt32LE(8000, 28)
  b.writeUInt16LE(1, 32)
  b.writeUInt16LE(8, 34)
  b.write('data', 36, 'latin1')
  b.writeUInt32LE(8, 40)
  return b
}
export const WAV = wav()

/** A minimal PDF. */
export const PDF = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n', 'latin1')
export const TEXT = Buffer.from('Hello, wörld: plain UTF-8 text.\n', 'utf8')

/** `data:<mime>;base64,<bytes>`. */
export function dataUrl (mime: string, bytes: Buffer): string {
  return `data:${mime};base64,${bytes.toString('base64')}`
}
