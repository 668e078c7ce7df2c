/**
 * The chat.qwen.ai upload wire (PROTOCOL §1.8, PROTOCOL-2026 §5): the STS token request and its
 * two answer shapes, where the object-store PUT goes (§1.8.2 addressing decision), its OSS V1
 * signature, the `files[]` object a completion message carries (§1.8.4), and the 2026 document
 * parse step. Pure functions: the HTTP calls are `UpstreamClient.getSts/putObject/parseFile`.
 */
import { createHmac, randomUUID } from 'node:crypto'
import { UpstreamError } from '../errors.js'

export const UPLOAD_PATHS = {
  /** The current path (CK, JL, 2026 web app); answered wrapped in 2026. */
  sts: '/api/v2/files/getstsToken',
  /** The older path (RF), answered flat; tried when the current one is missing (404). */
  stsV1: '/api/v1/files/getstsToken',
  /** 2026: start parsing an uploaded document. */
  parse: '/api/v2/files/parse',
  /** 2026: poll parsing, `{file_id_list:[id]}`. */
  parseStatus: '/api/v2/files/parse/status',
} as const

/** What the upstream calls the kind of a file in the STS request (§1.8.1). */
export type StsFileType = 'image' | 'video' | 'audio' | 'document' | 'file'

/** What an upload is about: the bytes' sniffed type, size and the name given to the upstream. */
export interface UploadSpec {
  filename: string
  size: number
  mime: string
}

/** `filetype`: the MIME major type when the upstream knows it, else `file` (`application/pdf` → `file`). */
export function stsFileType (mime: string): StsFileType {
  const major = mime.split('/')[0]!.toLowerCase()
  return major === 'image' || major === 'video' || major === 'audio' || major === 'document' ? major : 'file'
}

/**
 * The STS request body. Both spellings (§1.8.1: `filename/filesize/filetype` per CK/RF, the
 * `file_name/file_size/file_type` that [X2] reports; UNSURE which a given server reads).
 */
export function stsBody (u: UploadSpec): Record<string, string | number> {
  const type = stsFileType(u.mime)
  return { filename: u.filename, filesize: u.size, filetype: type, file_name: u.filename, file_size: u.size, file_type: type }
}

/** The temporary credentials and the object's place, from an STS answer. */
export interface StsGrant {
  accessKeyId: string
  accessKeySecret: string
  securityToken: string
  bucket: string
  region: string
  /** `endpoint` when the answer carries one (a host, or a full URL). */
  endpoint: string | undefined
  /** The object key. */
  filePath: string
  /** The (presigned) GET URL: what the message's file object points at. */
  fileUrl: string
  fileId: string
}

const REQUIRED = ['access_key_id', 'access_key_secret', 'security_token', 'bucketname', 'region', 'file_path', 'file_url', 'file_id'] as const

/**
 * Read an STS answer: flat (v1, 2025) or wrapped in `{success, data}` (v2, 2026). Every field but
 * `endpoint` is required (as RF checks); a missing one is an upstream failure.
 */
export function stsGrantOf (body: unknown): StsGrant {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
  const inner = b.data && typeof b.data === 'object' && !Array.isArray(b.data) ? b.data as Record<string, unknown> : b
  const missing = REQUIRED.find((k) => typeof inner[k] !== 'string' || inner[k] === '')
  if (missing) throw new UpstreamError('upstream_error', `The upstream upload grant (STS) lacks ${missing}`)
  const s = (k: string): string => inner[k] as string
  return {
    accessKeyId: s('access_key_id'),
    accessKeySecret: s('access_key_secret'),
    securityToken: s('security_token'),
    bucket: s('bucketname'),
    region: s('region'),
    endpoint: typeof inner.endpoint === 'string' && inner.endpoint ? inner.endpoint : undefined,
    filePath: s('file_path').replace(/^\/+/, ''),
    fileUrl: s('file_url'),
    fileId: s('file_id'),
  }
}

/** The object key as it appears in a URL path: each segment percent-encoded, slashes kept. */
const keyPath = (filePath: string): string => filePath.split('/').map(encodeURIComponent).join('/')

/**
 * Where the PUT goes (§1.8.2 decision): a full URL endpoint whose host is not under
 * `aliyuncs.com` gets path-style `<endpoint>/<bucket>/<key>`; otherwise virtual-host style
 * `https://<bucket>.<host or region.aliyuncs.com>/<key>`.
 */
export function objectUrl (g: StsGrant): string {
  const ep = g.endpoint
  if (ep && /^https?:\/\//i.test(ep)) {
    const u = new URL(ep)
    const host = u.hostname.toLowerCase()
    if (host !== 'aliyuncs.com' && !host.endsWith('.aliyuncs.com')) {
      return `${u.origin}${u.pathname.replace(/\/+$/, '')}/${encodeURIComponent(g.bucket)}/${keyPath(g.filePath)}`
    }
    return `https://${g.bucket}.${u.host}/${keyPath(g.filePath)}`
  }
  const host = ep ? ep.replace(/\/+$/, '') : `${g.region}.aliyuncs.com`
  return `https://${g.bucket}.${host}/${keyPath(g.filePath)}`
}

/**
 * OSS V1 string to sign: `VERB\nContent-MD5\nContent-Type\nDate\n` + the `x-oss-*` headers
 * (lower-case, sorted, `name:value\n`) + the canonical resource `/<bucket>/<key>`.
 */
export function ossStringToSign (verb: string, contentMd5: string, contentType: string, date: string, ossHeaders: Record<string, string>, resource: string): string {
  const canon = Object.entries(ossHeaders).map(([k, v]) => [k.toLowerCase(), v.trim()] as const)
    .filter(([k]) => k.startsWith('x-oss-')).sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}:${v}\n`).join('')
  return `${verb}\n${contentMd5}\n${contentType}\n${date}\n${canon}${resource}`
}

/** base64 HMAC-SHA1 of the string to sign with the STS secret. */
export function ossSignature (secret: string, stringToSign: string): string {
  return createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64')
}

/** The headers of the signed PUT (V1, with the STS security token). */
export function putHeaders (g: StsGrant, mime: string, size: number, now: number): Record<string, string> {
  const date = new Date(now).toUTCString()
  const oss = { 'x-oss-security-token': g.securityToken }
  const sig = ossSignature(g.accessKeySecret, ossStringToSign('PUT', '', mime, date, oss, `/${g.bucket}/${g.filePath}`))
  return { ...oss, date, 'content-type': mime, 'content-length': String(size), authorization: `OSS ${g.accessKeyId}:${sig}` }
}

/** A failed PUT: OSS answers `<Error><Code>…</Code><Message>…</Message>` (403 for signatures). */
export function putFailure (status: number, text: string): UpstreamError {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1]
  const msg = /<Message>([^<]*)<\/Message>/.exec(text)?.[1]
  const what = code ? `${code}${msg ? `: ${msg}` : ''}` : `HTTP ${status}`
  return new UpstreamError('upstream_error', `The upstream object store refused the upload (${what.slice(0, 200)})`)
}

/** Kinds of file objects and their `type`/`file_class` pairs ([X2] §4.7, PROTOCOL-2026 §5). */
export type FileKind = 'image' | 'video' | 'audio' | 'file'
const CLASS: Record<FileKind, string> = { image: 'vision', video: 'video', audio: 'audio', file: 'document' }

/**
 * The browser-style `files[]` entry for an uploaded object (§1.8.4). A document that went through
 * the 2026 parse step (`parsed`) carries `parse_meta` and `context: "full"` (PROTOCOL-2026 §5).
 */
export function fileObject (g: StsGrant, u: UploadSpec & { kind: FileKind }, now: number, o: { userId?: string; parsed?: boolean } = {}): Record<string, unknown> {
  const meta: Record<string, unknown> = { name: u.filename, size: u.size, content_type: u.mime }
  if (o.parsed) meta.parse_meta = { parse_status: 'success' }
  const obj: Record<string, unknown> = {
    type: u.kind,
    file: {
      created_at: now, data: {}, filename: u.filename, hash: null, id: g.fileId, user_id: o.userId ?? '', meta, update_at: now,
    },
    id: g.fileId,
    url: g.fileUrl,
    name: u.filename,
    collection_name: '',
    progress: 0,
    status: 'uploaded',
    greenNet: 'success',
    size: u.size,
    error: '',
    itemId: randomUUID(),
    file_type: u.mime,
    showType: u.kind,
    file_class: CLASS[u.kind],
    uploadTaskId: randomUUID(),
  }
  if (u.kind === 'file') obj.context = 'full'
  return obj
}

/** Status of one file in a `/parse/status` answer: `success`, `failed`, or anything else (still running). */
export function parseStatusOf (body: unknown, fileId: string): string | undefined {
  const data = (body as { data?: unknown } | undefined)?.data
  const list = Array.isArray(data) ? data : Array.isArray((data as { data?: unknown } | undefined)?.data) ? (data as { data: unknown[] }).data : []
  for (const item of list) {
    const r = item as Record<string, unknown> | null
    if (r && (r.file_id === fileId || r.id === fileId) && typeof r.status === 'string') return r.status
  }
  return undefined
}
