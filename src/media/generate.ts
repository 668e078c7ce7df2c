/**
 * Media generation against the upstream, shared by the chat suffix models and the OpenAI media
 * endpoints: one image (t2i, or image_edit of uploaded images) per call, and video tasks (t2v)
 * created and polled. Each call runs under a credential lease with failover like a completion
 * (`withIdentity`): a new chat, the attachments uploaded for that identity, then the media turn.
 */
import type { ChatLifecycle } from '../chats.js'
import { UpstreamError } from '../errors.js'
import type { IdentityPool } from '../pool.js'
import { credentialsOf } from '../pool.js'
import type { TokenService } from '../tokens.js'
import { ClientLeaseSource, PoolLeaseSource, type Caller, type CredentialLease, type LeaseSource } from '../turn/lease.js'
import { withIdentity } from '../turn/open.js'
import type { UpstreamClient } from '../upstream/client.js'
import { imageUrlOf, type AspectRatio, type TaskStatus } from '../upstream/media.js'
import type { Credentials } from '../upstream/protocol.js'
import type { Attachment, AttachmentUploader } from './attachment.js'

export interface GenerateDeps {
  client: UpstreamClient
  chats: ChatLifecycle
  pool: IdentityPool
  tokens: TokenService
  uploader: AttachmentUploader
  maxRetries: number
  /** A failover happened (the access log and events). */
  onFailover?: (requestId: string, identity: string, err: UpstreamError, attempt: number) => void
}

export interface MediaRequest {
  caller: Caller
  /** The upstream model id. */
  model: string
  prompt: string
  size: AspectRatio
  /** image_edit: the images to edit (uploaded for the identity that serves). */
  attachments: readonly Attachment[]
  requestId: string
  signal: AbortSignal
}

/** Who a video task belongs to: polling must use the same identity's credentials. */
export interface VideoTaskRef {
  taskId: string
  /** Pool identity, undefined for a client-mode caller (their own credentials poll). */
  identityId: string | undefined
  proxyUrl: string | undefined
  identity: string
}

export class MediaGenerator {
  constructor (private readonly d: GenerateDeps) {}

  private source (caller: Caller): LeaseSource {
    return caller.kind === 'client'
      ? new ClientLeaseSource(this.d.tokens, caller.token, caller.cookie)
      : new PoolLeaseSource(this.d.pool, this.d.tokens)
  }

  /** Run one attempt under a lease with failover; the lease is released with the outcome. */
  private async run<T> (req: MediaRequest, attempt: (lease: CredentialLease) => Promise<T>): Promise<{ value: T; lease: CredentialLease }> {
    const { lease, value } = await withIdentity(this.source(req.caller), req.signal, this.d.maxRetries, attempt, {
      onFailover: (l, err, n) => this.d.onFailover?.(req.requestId, l.label, err, n),
    })
    lease.release({ kind: 'success' })
    return { value, lease }
  }

  private async chat (lease: CredentialLease, req: MediaRequest, chatType: 't2i' | 'image_edit' | 't2v'): Promise<{ chatId: string; files: unknown[]; o: { signal: AbortSignal; requestId: string; proxyUrl: string | undefined } }> {
    const o = { signal: req.signal, requestId: req.requestId, proxyUrl: lease.proxyUrl }
    const chatId = await this.d.chats.create(lease, req.model, chatType, o)
    const files = req.attachments.length ? await this.d.uploader.filesFor(lease, req.attachments, { signal: req.signal, requestId: req.requestId }) : []
    return { chatId, files, o }
  }

  /** One image: t2i, or image_edit when the request carries images. Returns its upstream URL. */
  async image (req: MediaRequest): Promise<{ url: string; identity: string }> {
    const chatType = req.attachments.length ? 'image_edit' : 't2i'
    const { value, lease } = await this.run(req, async (lease) => {
      const { chatId, files, o } = await this.chat(lease, req, chatType)
      const { stream, first } = await this.d.client.openCompletion(lease.cred, {
        chatId, model: req.model, chatType, thinking: false, content: req.prompt, parentId: null, files, size: req.size,
      }, o)
      try {
        for (let batch: typeof first | null = first; batch; batch = await stream.next()) {
          for (const f of batch) {
            const url = imageUrlOf(f)
            if (url) return url
          }
        }
      } finally {
        stream.close()
      }
      throw new UpstreamError('empty_answer', 'The upstream finished the image generation without an image')
    })
    return { url: value, identity: lease.label }
  }

  /** Create a video task (t2v); the reference needed to poll it. */
  async startVideo (req: MediaRequest): Promise<VideoTaskRef> {
    const { value, lease } = await this.run(req, async (lease) => {
      const { chatId, files, o } = await this.chat(lease, req, 't2v')
      return this.d.client.createVideoTask(lease.cred, {
        chatId, model: req.model, chatType: 't2v', thinking: false, content: req.prompt, parentId: null, files, size: req.size,
      }, o)
    })
    return { taskId: value, identityId: lease.identityId, proxyUrl: lease.proxyUrl, identity: lease.label }
  }

  /** The status of a task, asked with its identity's credentials (a client-mode caller's own). */
  async videoStatus (ref: VideoTaskRef, caller: Caller, signal: AbortSignal): Promise<TaskStatus> {
    const cred = await this.credFor(ref, caller, signal)
    return this.d.client.taskStatus(cred, ref.taskId, { signal, proxyUrl: ref.proxyUrl })
  }

  private async credFor (ref: VideoTaskRef, caller: Caller, signal: AbortSignal): Promise<Credentials> {
    if (ref.identityId === undefined) {
      if (caller.kind !== 'client') throw new UpstreamError('no_identity', 'The video task belongs to a client-mode caller')
      const lease = await new ClientLeaseSource(this.d.tokens, caller.token, caller.cookie).acquire()
      await lease.prepare(signal)
      return lease.cred
    }
    const i = this.d.pool.get(ref.identityId)
    if (!i) throw new UpstreamError('no_identity', 'The account that created the video task is no longer configured')
    return credentialsOf(i)
  }
}
