/**
 * The media content parts of an OpenAI chat request (CONTRACT §1.2, DECISIONS "Part types"):
 *
 * - `{type:"image_url", image_url:{url}}`: a `data:` base64 URL or an http(s) URL;
 * - `{type:"input_audio", input_audio:{data, format}}`: bare base64, format `wav` or `mp3`;
 * - `{type:"file", file:{file_data, filename?}}`: a base64 data URL or bare base64 (`file_id` is
 *   refused: there is no Files API);
 * - `{type:"video_url", video_url:{url}}`: like `image_url`.
 *
 * This module reads their shape (a malformed part is a 400 naming it) and says what each leaves in
 * the prompt text; `decode.ts` checks their bytes and `resolve.ts` turns them into attachments.
 */
import { InvalidRequestError, clip } from '../errors.js'
import type { PartKind } from './sniff.js'

/** Where the bytes are: inline (base64 text) or behind a URL the gateway fetches. */
export type MediaSource = { inline: string } | { url: string }

export interface MediaPart {
  part: PartKind
  /** `messages[i].content[j]`. */
  param: string
  source: MediaSource
  /** `file.filename`, when given. */
  filename?: string
  /** `input_audio.format`. */
  format?: string
}

/** The error code for a part: image parts are `invalid_image_url`, every other part `invalid_file`. */
export function codeFor (part: PartKind): string {
  return part === 'image_url' ? 'invalid_image_url' : 'invalid_file'
}

/** A 400 about one part, naming it. */
export function partError (part: PartKind, param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(`${param}: ${message}`, param, codeFor(part))
}

const MEDIA_TYPES = new Set<string>(['image_url', 'input_audio', 'file', 'video_url'])

/** Whether a content part type is one of the media parts. */
export function isMediaPart (type: unknown): type is PartKind {
  return typeof type === 'string' && MEDIA_TYPES.has(type)
}

function record (v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined
}

/** An `image_url`/`video_url` value: `data:` or http(s); anything else (file:, gopher:, …) is refused. */
function urlSource (part: PartKind, param: string, value: unknown): MediaSource {
  const url = typeof value === 'string' ? value : record(value)?.url
  if (typeof url !== 'string' || url.trim() === '') throw partError(part, param, `\`${part}.url\` must be a non-empty string`)
  const u = url.trim()
  if (/^data:/i.test(u)) return { inline: u }
  if (/^https?:\/\//i.test(u)) return { url: u }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(u)?.[1]
  throw partError(part, param, scheme
    ? `URLs with the scheme \`${clip(scheme, 20)}:\` are not fetched; send a data: URL with base64 or an http(s) URL`
    : 'the URL must be a data: URL with base64 or an http(s) URL')
}

/** Read one media part's shape. Throws a 400 naming the part when it is malformed. */
export function readMediaPart (p: Record<string, unknown>, param: string): MediaPart {
  const part = p.type as PartKind
  switch (part) {
    case 'image_url':
    case 'video_url':
      return { part, param, source: urlSource(part, param, p[part]) }
    case 'input_audio': {
      const a = record(p.input_audio)
      if (!a || typeof a.data !== 'string') throw partError(part, param, '`input_audio.data` must be a base64 string')
      if (a.format !== 'wav' && a.format !== 'mp3') throw partError(part, param, `\`input_audio.format\` must be \`wav\` or \`mp3\`, not \`${clip(a.format)}\``)
      return { part, param, source: { inline: a.data }, format: a.format }
    }
    default: {
      const f = record(p.file)
      if (!f) throw partError(part, param, '`file` must be an object with `file_data`')
      if (typeof f.file_data !== 'string') {
        if (f.file_id !== undefined && f.file_id !== null) {
          throw partError(part, param, '`file_id` is not supported: this gateway has no Files API; send the file inline as `file_data` (a base64 data URL)')
        }
        throw partError(part, param, '`file.file_data` must be a base64 string or a base64 data URL')
      }
      const filename = typeof f.filename === 'string' && f.filename.trim() !== '' ? f.filename : undefined
      return { part, param, source: { inline: f.file_data }, ...(filename ? { filename } : {}) }
    }
  }
}

/** A client file name made safe for the upstream: its last path segment, printable, at most 100 characters. */
export function cleanFilename (name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = name.split(/[\\/]/).pop()!.replace(/[\x00-\x1f\x7f"<>|:*?]/g, '').trim()
  return base.slice(-100)
}

/**
 * What a media part leaves in the prompt text, where it stood: `[image]`, `[audio]`, `[video]` or
 * `[file NAME]`. The bytes themselves travel as upstream files (the most recent images and every
 * other part; see `resolve.ts`); an image too old to be attached is known to the model by this
 * marker only. Validates the part's shape (400 naming it).
 */
export function mediaPartText (p: Record<string, unknown>, param: string): string {
  const m = readMediaPart(p, param)
  switch (m.part) {
    case 'image_url': return '[image]'
    case 'input_audio': return '[audio]'
    case 'video_url': return '[video]'
    default: {
      const name = m.filename && cleanFilename(m.filename)
      return name ? `[file ${name}]` : '[file]'
    }
  }
}
