/**
 * The seam between the faces (which find media in a request) and the upload plugin (which puts it
 * on the upstream for one identity). An attachment is identity-free: its bytes are checked and
 * typed once, before any identity is leased; each identity that serves the request uploads it for
 * itself (`qwenUpload`), so failover to another identity uploads again.
 */
import type { CredentialLease } from '../turn/lease.js'

/** What kind of upstream file object the bytes become (PROTOCOL §1.8.4). */
export type AttachmentKind = 'image' | 'video' | 'audio' | 'file'

export interface Attachment {
  kind: AttachmentKind
  /** The sniffed type (never the declared one), e.g. `image/png`. */
  mime: string
  bytes: Buffer
  /** A file name for the upstream (the client's, or one made from the type). */
  filename: string
  /** Hex sha256 of `bytes`: the upload cache key, together with the identity. */
  sha256: string
  /** Where in the request it came from, e.g. `messages[2].content[1]` (for error messages). */
  param: string
}

/**
 * Puts attachments on the upstream for one identity and returns the upstream `files[]` objects, in
 * the same order. Implemented by the upload plugin; the runner calls it inside each attempt, with
 * the attempt's lease, so the files always belong to the identity that sends the completion.
 */
export interface AttachmentUploader {
  filesFor (lease: CredentialLease, attachments: readonly Attachment[], o: { signal: AbortSignal; requestId: string }): Promise<unknown[]>
}
