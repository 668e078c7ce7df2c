/**
 * The chat lifecycle service: every upstream chat is created here, by the lease that will use it,
 * and announced (`chat.created`) with the identity that owns it, so that chat deletion,
 * conversations and ready chats can attach to one place. It remembers which identity owns each
 * recent chat (bounded), so a later deletion goes out with the right account.
 */
import type { GatewayEvents } from './events.js'
import type { CredentialLease } from './turn/lease.js'
import type { UpstreamClient } from './upstream/client.js'
import type { ChatType, Credentials, UpstreamChat } from './upstream/protocol.js'

const MAX_TRACKED = 10_000

export interface CreateChatOptions { signal: AbortSignal; requestId: string }

/** How to reach the upstream as one pool identity (the pool decides; undefined when unknown or without a token). */
export type IdentityAccess = (identityId: string) => { cred: Credentials; proxyUrl: string | undefined } | undefined

export class ChatLifecycle {
  private readonly owners = new Map<string, string>()

  constructor (
    private readonly client: UpstreamClient,
    private readonly events: GatewayEvents,
    private readonly access: IdentityAccess,
    private readonly maxTracked = MAX_TRACKED,
  ) {}

  /** Create a chat for `lease` and announce it. Client-mode chats belong to the caller and are not tracked. */
  async create (lease: CredentialLease, model: string, chatType: ChatType, o: CreateChatOptions): Promise<string> {
    const chatId = await this.client.createChat(lease.cred, model, chatType, { signal: o.signal, requestId: o.requestId, proxyUrl: lease.proxyUrl })
    if (lease.identityId !== undefined) {
      if (this.owners.size >= this.maxTracked) this.owners.delete(this.owners.keys().next().value!)
      this.owners.set(chatId, lease.identityId)
      this.events.emit('chat.created', { identity: lease.identityId, chatId, model, chatType, requestId: o.requestId })
    }
    return chatId
  }

  /** The pool identity that created `chatId`, if it was created recently by this process. */
  owner (chatId: string): string | undefined {
    return this.owners.get(chatId)
  }

  /** One page of an identity's chats, newest first. */
  async list (identityId: string, o: { page?: number; signal?: AbortSignal } = {}): Promise<UpstreamChat[]> {
    const a = this.reach(identityId)
    return this.client.listChats(a.cred, { ...o, proxyUrl: a.proxyUrl })
  }

  /**
   * Delete a chat as the identity that owns it (`identityId`, or the owner this service
   * remembers). True when deleted, false when the upstream no longer has it.
   */
  async delete (chatId: string, o: { identityId?: string; signal?: AbortSignal } = {}): Promise<boolean> {
    const identity = o.identityId ?? this.owners.get(chatId)
    if (identity === undefined) throw new Error(`No known owner for chat ${chatId}`)
    const a = this.reach(identity)
    const deleted = await this.client.deleteChat(a.cred, chatId, { proxyUrl: a.proxyUrl, ...(o.signal ? { signal: o.signal } : {}) })
    this.owners.delete(chatId)
    if (deleted) this.events.emit('chat.deleted', { identity, chatId })
    return deleted
  }

  private reach (identityId: string): { cred: Credentials; proxyUrl: string | undefined } {
    const a = this.access(identityId)
    if (!a) throw new Error(`Identity ${identityId} is unknown or has no token`)
    return a
  }
}
