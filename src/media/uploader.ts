/**
 * Puts attachments on the upstream for one identity (the `AttachmentUploader` the runner calls in
 * each attempt, decorated as `qwenUpload`): STS grant, signed object PUT, the 2026 parse step for
 * documents, then the `files[]` object. Identical bytes are uploaded once per identity (the upload
 * cache, keyed by identity and sha256), and concurrent uploads of the same bytes for the same
 * identity share one flight.
 */
import { createHash } from 'node:crypto'
import { untilAborted } from '../grace.js'
import type { UploadEvent } from '../events.js'
import type { CredentialLease } from '../turn/lease.js'
import type { UpstreamClient } from '../upstream/client.js'
import { fileObject, type UploadSpec } from '../upstream/upload.js'
import type { Attachment, AttachmentUploader } from './attachment.js'
import type { UploadCache } from './upload-cache.js'

export interface UploaderDeps {
  client: Pick<UpstreamClient, 'getSts' | 'putObject' | 'parseFile'>
  cache: UploadCache
  now: () => number
  /** Polling of the 2026 document parse step. */
  parsePoll?: { intervalMs: number; attempts: number }
  /** Told about each attachment's outcome (metrics). */
  onUpload?: (e: UploadEvent) => void
}

/** Who the files belong to: the pool identity, or (client mode) a hash of the caller's credential. */
export function identityKey (lease: CredentialLease): string {
  if (lease.identityId !== undefined) return `id:${lease.identityId}`
  const secret = lease.cred.cookie ?? lease.cred.token ?? ''
  return `client:${createHash('sha256').update(secret).digest('hex').slice(0, 32)}`
}

/** A file name the upstream takes: no path, only safe characters, not too long. */
export function uploadName (a: Pick<Attachment, 'filename' | 'mime'>): string {
  const base = a.filename.split(/[\\/]/).pop()!.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '').slice(-100)
  return base || `file.${a.mime.split('/')[1]?.replace(/[^\w]+/g, '') || 'bin'}`
}

interface Flight { promise: Promise<Record<string, unknown>>; signal: AbortSignal }

export class Uploader implements AttachmentUploader {
  private readonly flights = new Map<string, Flight>()

  constructor (private readonly d: UploaderDeps) {}

  async filesFor (lease: CredentialLease, attachments: readonly Attachment[], o: { signal: AbortSignal; requestId: string }): Promise<unknown[]> {
    if (attachments.length === 0) return []
    const who = identityKey(lease)
    return Promise.all(attachments.map((a) => this.one(lease, who, a, o)))
  }

  private async one (lease: CredentialLease, who: string, a: Attachment, o: { signal: AbortSignal; requestId: string }): Promise<Record<string, unknown>> {
    const tell = (result: UploadEvent['result']): void => { this.d.onUpload?.({ requestId: o.requestId, identity: lease.label, kind: a.kind, bytes: a.bytes.length, result }) }
    let uploaded = false
    try {
      const file = await this.fileFor(lease, who, a, o, () => { uploaded = true })
      tell(uploaded ? 'uploaded' : 'cached')
      return file
    } catch (err) {
      if (!o.signal.aborted) tell('failed')
      throw err
    }
  }

  private async fileFor (lease: CredentialLease, who: string, a: Attachment, o: { signal: AbortSignal; requestId: string }, started: () => void): Promise<Record<string, unknown>> {
    const key = `${who}:${a.sha256}`
    for (;;) {
      const cached = await this.d.cache.get(key)
      if (cached) return cached
      let flight = this.flights.get(key)
      if (!flight) {
        started()
        const promise = this.upload(lease, a, o)
        const f: Flight = { promise, signal: o.signal }
        flight = f
        this.flights.set(key, f)
        promise.then(async (file) => { await this.d.cache.set(key, file) }, () => {}).finally(() => {
          if (this.flights.get(key) === f) this.flights.delete(key)
        })
      }
      try {
        return structuredClone(await untilAborted(flight.promise, o.signal))
      } catch (err) {
        // Another request's flight given up by its own client: upload for this request instead.
        if (flight.signal !== o.signal && flight.signal.aborted && !o.signal.aborted) continue
        throw err
      }
    }
  }

  private async upload (lease: CredentialLease, a: Attachment, o: { signal: AbortSignal; requestId: string }): Promise<Record<string, unknown>> {
    const call = { signal: o.signal, requestId: o.requestId, proxyUrl: lease.proxyUrl }
    const spec: UploadSpec = { filename: uploadName(a), size: a.bytes.length, mime: a.mime }
    const grant = await this.d.client.getSts(lease.cred, spec, call)
    await this.d.client.putObject(grant, a.bytes, a.mime, call)
    const parsed = a.kind === 'file'
      ? await this.d.client.parseFile(lease.cred, grant.fileId, { ...call, ...(this.d.parsePoll ? { poll: this.d.parsePoll } : {}) })
      : false
    return fileObject(grant, { ...spec, kind: a.kind }, this.d.now(), { parsed })
  }
}
