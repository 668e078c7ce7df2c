/**
 * The simulator's upload side (PROTOCOL §1.8, PROTOCOL-2026 §5), strict:
 *   POST /api/v2/files/getstsToken   {filename|file_name, filesize|file_size, filetype|file_type} → wrapped grant
 *   POST /api/v1/files/getstsToken   the same, answered flat
 *   PUT  /<bucket>/<file_path>       the object store: OSS V1 signature, `x-oss-security-token`, size and
 *                                    content type as granted (OSS XML errors otherwise)
 *   GET  /<bucket>/<file_path>?key=  serves the object back
 *   POST /api/v2/files/parse         (2026) {file_id} → starts parsing a document
 *   POST /api/v2/files/parse/status  (2026) {file_id_list} → [{file_id, status}]
 * and the check of a completion message's `files[]`: every entry must be an object this account uploaded.
 * The signature is checked with the simulator's own code (not the gateway's).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { appError, badRequest, invalidRequest, jsonReply, type Reply } from './bodies.js'
import type { SimLogEntry } from './types.js'

export const BUCKET = 'qwen-webui-sim'
const REGION = 'oss-sim-local'
/** STS grants are valid this long (the real ones: ~5 min). */
const GRANT_TTL_MS = 300_000
/** The simulated object store's size cap (the web app's client-side check: 100 MB). */
const MAX_OBJECT_BYTES = 100 * 1024 * 1024
/** A PUT's `Date` may be this far from the simulator's clock (OSS: 15 min). */
const CLOCK_SKEW_MS = 15 * 60_000
const FILE_TYPES = new Set(['image', 'video', 'audio', 'document', 'file'])

/** What the upload side needs of one request in flight. */
export interface SimCtx {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  entry: SimLogEntry
}

/** An account as far as uploads care: who it is. */
export interface SimOwner { pub: { id: string; email: string } }

/** The server's plumbing the upload side reuses. */
export interface FilesHost<C extends SimCtx, A extends SimOwner> {
  is2026: boolean
  now: () => number
  /** The simulator's own URL (objects are served from it). */
  baseUrl: () => string
  authenticate: (ctx: C, cookieOnly: boolean) => A | undefined
  jsonBody: (ctx: C) => Promise<Record<string, unknown> | undefined>
  readBody: (req: IncomingMessage, limit: number) => Promise<Buffer | null | undefined>
  reply: (ctx: C, r: Reply) => void
  /** The account's next `sts` scenario: true when it already answered (a scripted failure). */
  scenario: (ctx: C, acct: A) => Promise<boolean>
}

interface Grant {
  owner: string
  accessKeyId: string
  secret: string
  token: string
  size: number
  fileType: string
  fileId: string
  key: string
  expiresAt: number
}

export interface StoredObject {
  owner: string
  fileId: string
  mime: string
  bytes: Buffer
  /** Parsing state of a document (2026): undefined until `/parse`. */
  parse?: { doneAt: number }
}

const xmlError = (status: number, code: string, message: string): Reply => ({
  status, contentType: 'application/xml', body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${randomUUID()}</RequestId></Error>`,
})

function str (b: Record<string, unknown>, a: string, c: string): unknown {
  return b[a] !== undefined ? b[a] : b[c]
}

export interface FileStore<C extends SimCtx> {
  /** The handler of an upload route, undefined for other requests. */
  handler: (method: string, path: string) => ((ctx: C) => Promise<void> | void) | undefined
  /** Why a completion message's `files` are refused, or undefined when they are all this account's uploads. */
  checkFiles: (ownerId: string, files: unknown) => string | undefined
  /** The object a URL of this store names. */
  objectAt: (url: string) => StoredObject | undefined
  /** Put an object directly (generated images and videos). Returns its URL. */
  put: (owner: string, path: string, mime: string, bytes: Buffer) => string
  /** Number of stored objects (tests). */
  size: () => number
  clear: () => void
}

export function fileStore<C extends SimCtx, A extends SimOwner> (h: FilesHost<C, A>, parseDelayMs = 0): FileStore<C> {
  const grants = new Map<string, Grant>()
  const objects = new Map<string, StoredObject & { key: string }>()
  const byFileId = new Map<string, string>()
  const prefix = `/${BUCKET}/`

  const urlOf = (path: string, key: string): string =>
    `${h.baseUrl()}${prefix}${path.split('/').map(encodeURIComponent).join('/')}?key=${key}`

  /** The object path a request path or URL names, decoded. */
  function pathOf (pathname: string): string | undefined {
    if (!pathname.startsWith(prefix)) return undefined
    try {
      return decodeURIComponent(pathname.slice(prefix.length))
    } catch {
      return undefined
    }
  }

  async function sts (ctx: C, flat: boolean): Promise<void> {
    const acct = h.authenticate(ctx, false)
    const body = acct && await h.jsonBody(ctx)
    if (!acct || !body) return
    const name = str(body, 'filename', 'file_name')
    const size = str(body, 'filesize', 'file_size')
    const type = str(body, 'filetype', 'file_type')
    if (typeof type !== 'string' || !FILE_TYPES.has(type)) return h.reply(ctx, badRequest('Invalid file information!'))
    if (typeof name !== 'string' || !name || name.includes('/')) return h.reply(ctx, invalidRequest("Field 'filename': Input should be a valid file name"))
    if (!Number.isInteger(size) || (size as number) <= 0) return h.reply(ctx, invalidRequest("Field 'filesize': Input should be a positive integer"))
    if ((size as number) > MAX_OBJECT_BYTES) return h.reply(ctx, badRequest('File size exceeds the limit.'))
    if (await h.scenario(ctx, acct)) return
    const fileId = randomUUID()
    const path = `${acct.pub.id}/${fileId}_${name}`
    const g: Grant = {
      owner: acct.pub.id, accessKeyId: `STS.${randomBytes(12).toString('hex')}`, secret: randomBytes(24).toString('base64url'),
      token: `CAIS${randomBytes(48).toString('base64url')}`, size: size as number, fileType: type, fileId,
      key: randomBytes(16).toString('hex'), expiresAt: h.now() + GRANT_TTL_MS,
    }
    grants.set(path, g)
    const data = {
      access_key_id: g.accessKeyId, access_key_secret: g.secret, security_token: g.token, bucketname: BUCKET, region: REGION,
      endpoint: h.baseUrl(), file_path: path, file_url: urlOf(path, g.key), file_id: fileId,
      expiration: new Date(g.expiresAt).toISOString(),
    }
    h.reply(ctx, jsonReply(200, flat ? data : { success: true, request_id: randomUUID(), data }))
  }

  /** What a PUT gets wrong, checked the way OSS does (V1 header signature with an STS token). */
  function refusal (ctx: C, g: Grant | undefined, path: string): Reply | undefined {
    const hd = ctx.req.headers
    if (!g) return xmlError(403, 'AccessDenied', 'No upload was granted for this object.')
    if (g.expiresAt <= h.now()) return xmlError(403, 'InvalidAccessKeyId', 'The security token has expired.')
    const m = /^OSS ([^:\s]+):(\S+)$/.exec(String(hd.authorization ?? ''))
    if (!m || m[1] !== g.accessKeyId) return xmlError(403, 'InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.')
    if (hd['x-oss-security-token'] !== g.token) return xmlError(403, 'InvalidSecurityToken', 'The security token you provided is invalid.')
    const date = String(hd.date ?? '')
    const when = Date.parse(date)
    if (!date || Number.isNaN(when) || Math.abs(when - h.now()) > CLOCK_SKEW_MS) return xmlError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.')
    const type = String(hd['content-type'] ?? '')
    const major = type.split('/')[0]
    const fits = g.fileType === 'file' || g.fileType === 'document' ? type !== '' : major === g.fileType
    if (!fits) return xmlError(400, 'InvalidArgument', `Content-Type ${type || '(none)'} does not match the granted file type ${g.fileType}.`)
    const oss = Object.keys(hd).filter((k) => k.startsWith('x-oss-')).sort().map((k) => `${k}:${String(hd[k]).trim()}\n`).join('')
    const toSign = `PUT\n${String(hd['content-md5'] ?? '')}\n${type}\n${date}\n${oss}/${BUCKET}/${path}`
    const expected = createHmac('sha1', g.secret).update(toSign).digest('base64')
    if (m[2] !== expected) return xmlError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.')
    return undefined
  }

  async function putObject (ctx: C, path: string): Promise<void> {
    const g = grants.get(path)
    const bad = refusal(ctx, g, path)
    const raw = await h.readBody(ctx.req, MAX_OBJECT_BYTES)
    if (raw === undefined) return
    if (bad) return h.reply(ctx, bad)
    if (raw === null || raw.length !== g!.size) {
      return h.reply(ctx, xmlError(400, 'InvalidArgument', `The body is ${raw === null ? 'too large' : `${raw.length} bytes`}, the grant was for ${g!.size}.`))
    }
    ctx.entry.account = g!.owner
    grants.delete(path)
    objects.set(path, { owner: g!.owner, fileId: g!.fileId, mime: String(ctx.req.headers['content-type']), bytes: raw, key: g!.key })
    byFileId.set(g!.fileId, path)
    ctx.entry.status = 200
    ctx.res.writeHead(200, { etag: `"${randomBytes(16).toString('hex').toUpperCase()}"`, 'content-length': 0 })
    ctx.res.end()
  }

  function getObject (ctx: C, path: string): void {
    const o = objects.get(path)
    if (!o || ctx.url.searchParams.get('key') !== o.key) return h.reply(ctx, xmlError(o ? 403 : 404, o ? 'AccessDenied' : 'NoSuchKey', o ? 'Bad signature.' : 'The specified key does not exist.'))
    ctx.entry.status = 200
    ctx.res.writeHead(200, { 'content-type': o.mime, 'content-length': o.bytes.length })
    ctx.res.end(o.bytes)
  }

  /** A document object of this account by id, or a reply saying why not. */
  function ownDocument (acct: A, id: unknown): StoredObject | Reply {
    const path = typeof id === 'string' ? byFileId.get(id) : undefined
    const o = path === undefined ? undefined : objects.get(path)
    if (!o || o.owner !== acct.pub.id) return appError(200, 'Not_Found', 'File not found')
    return o
  }

  async function parse (ctx: C): Promise<void> {
    const acct = h.authenticate(ctx, false)
    const body = acct && await h.jsonBody(ctx)
    if (!acct || !body) return
    const o = ownDocument(acct, body.file_id)
    if ('status' in o) return h.reply(ctx, o)
    o.parse ??= { doneAt: h.now() + parseDelayMs }
    h.reply(ctx, jsonReply(200, { success: true, request_id: randomUUID(), data: { file_id: o.fileId, status: 'running' } }))
  }

  async function parseStatus (ctx: C): Promise<void> {
    const acct = h.authenticate(ctx, false)
    const body = acct && await h.jsonBody(ctx)
    if (!acct || !body) return
    const ids = body.file_id_list
    if (!Array.isArray(ids) || ids.length === 0) return h.reply(ctx, invalidRequest("Field 'file_id_list': Input should be a non-empty list"))
    const data = ids.map((id) => {
      const o = ownDocument(acct, id)
      const status = 'status' in o ? 'not_found' : !o.parse ? 'not_started' : o.parse.doneAt <= h.now() ? 'success' : 'running'
      return { file_id: id, status }
    })
    h.reply(ctx, jsonReply(200, { success: true, request_id: randomUUID(), data }))
  }

  function objectAt (url: string): StoredObject | undefined {
    let u: URL
    try { u = new URL(url) } catch { return undefined }
    const path = u.origin === new URL(h.baseUrl()).origin ? pathOf(u.pathname) : undefined
    const o = path === undefined ? undefined : objects.get(path)
    return o && u.searchParams.get('key') === o.key ? o : undefined
  }

  function checkFiles (ownerId: string, files: unknown): string | undefined {
    if (files === undefined) return undefined
    if (!Array.isArray(files)) return 'Invalid input files must be a list.'
    for (const [i, f] of files.entries()) {
      const rec = f && typeof f === 'object' ? f as Record<string, unknown> : undefined
      if (!rec || typeof rec.url !== 'string' || typeof rec.type !== 'string') return `Invalid input files.${i}: a file needs type and url.`
      const o = objectAt(rec.url)
      if (!o) return `Invalid input files.${i}: the file was never uploaded.`
      if (o.owner !== ownerId) return `Invalid input files.${i}: the file belongs to another user.`
      const major = o.mime.split('/')[0]
      const kind = major === 'image' || major === 'video' || major === 'audio' ? major : 'file'
      if (rec.type !== kind) return `Invalid input files.${i}: type ${rec.type} does not match the file (${o.mime}).`
      if (h.is2026 && kind === 'file' && !(o.parse && o.parse.doneAt <= h.now())) return `Invalid input files.${i}: the document was not parsed.`
    }
    return undefined
  }

  return {
    handler (method, path) {
      if (method === 'POST' && path === '/api/v2/files/getstsToken') return (ctx) => sts(ctx, false)
      if (method === 'POST' && path === '/api/v1/files/getstsToken') return (ctx) => sts(ctx, true)
      if (h.is2026 && method === 'POST' && path === '/api/v2/files/parse') return parse
      if (h.is2026 && method === 'POST' && path === '/api/v2/files/parse/status') return parseStatus
      const objectPath = pathOf(path)
      if (!objectPath) return undefined
      if (method === 'PUT') return (ctx) => putObject(ctx, objectPath)
      if (method === 'GET') return (ctx) => getObject(ctx, objectPath)
      return undefined
    },
    checkFiles,
    objectAt,
    put (owner, path, mime, bytes) {
      const key = randomBytes(16).toString('hex')
      objects.set(path, { owner, fileId: randomUUID(), mime, bytes, key })
      return urlOf(path, key)
    },
    size: () => objects.size,
    clear () {
      grants.clear()
      objects.clear()
      byFileId.clear()
    },
  }
}

