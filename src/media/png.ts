/**
 * Tiny PNG encoding and header reading with `node:zlib` only: the simulator's generated images, the
 * probe's one-pixel upload, and the tests that check the dimensions of what came back.
 */
import { crc32, deflateSync } from 'node:zlib'

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

function chunk (type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(td))
  return Buffer.concat([len, td, crc])
}

/** An RGB PNG of `width`×`height` filled with a vertical gradient from `rgb`. */
export function encodePng (width: number, height: number, rgb: readonly [number, number, number] = [64, 128, 192]): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new RangeError(`encodePng: bad size ${width}x${height}`)
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type RGB
  const row = 1 + width * 3
  const raw = Buffer.alloc(row * height)
  for (let y = 0; y < height; y++) {
    const shade = Math.round((y / height) * 63)
    for (let x = 0; x < width; x++) {
      const o = y * row + 1 + x * 3
      raw[o] = (rgb[0] + shade) & 0xff
      raw[o + 1] = rgb[1]
      raw[o + 2] = (rgb[2] + x) & 0xff
    }
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
}

/** Width and height from a PNG's IHDR, or undefined when `buf` is not a PNG. */
export function pngSize (buf: Buffer): { width: number; height: number } | undefined {
  if (buf.length < 24 || !buf.subarray(0, 8).equals(SIGNATURE) || buf.toString('latin1', 12, 16) !== 'IHDR') return undefined
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) }
}
