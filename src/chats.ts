/**
 * The chat lifecycle service: every upstream chat is created here, by the lease that will use it,
 * and announced (`chat.created`) with the identity that owns it, so that chat deletion,
 * conversations and ready chats can attach to one place. It remembers which identity owns each
 * recent chat (bounded), so a later deletion goes out with the right account.
 */
import { UpstreamError } from './errors.js'
import type { GatewayEvents } from './events.js'
import type { CredentialLease } from './turn/lease.js'
import type { UpstreamClient } from './upstream/client.js'
import type { ChatType, Credentials, UpstreamChat } from './upstream/protocol.js'

const MAX_TRACKED = 10_000

export interface CreateChatOptions {
  signal: AbortSignal
  requestId: string
  /** Create a new chat even when a ready one is in stock (after a ready chat was refused). */
  fresh?: boolean
}

/** Where ready chats come from (`src/ready/keeper.ts`): one of `identity`'s chats of (model, chat type), handed out once, or undefined. */
export interface ChatStockHook {
  take: (identity: string, model: string, chatType: ChatType) => Promise<string | undefined>
  /** A chat handed out by `take` started its completion (first frames), or failed before: its refill may go. */
  started: (chatId: string) => void
}

/** How to reach the upstream as one pool identity (the pool decides; undefined when unknown or without a token). */
export type IdentityAccess = (identityId: string) => { cred: Credentials; proxyUrl: string | undefined } | undefined

export class ChatLifecycle {
  private readonly owners = new Map<string, string>()
  /** Chats handed out from the ready stock and not yet used (bounded like `owners`). */
  private readonly fromStock = new Set<string>()
  private stock: ChatStockHook | undefined

  constructor (
    private readonly client: UpstreamClient,
    private readonly events: GatewayEvents,
    private readonly access: IdentityAccess,
    private readonly maxTracked = MAX_TRACKED,
  ) {}

  /** Take ready chats from `hook` for pool identities (the ready-chats plugin); undefined stops. */
  useStock (hook: ChatStockHook | undefined): void {
    this.stock = hook
  }

  /**
   * A chat for `lease`, announced (`chat.created`): a ready one from the stock when there is one
   * (pool identities only), else created now. Client-mode chats belong to the caller and are not tracked.
   */
  async create (lease: CredentialLease, model: string, chatType: ChatType, o: CreateChatOptions): Promise<string> {
    let chatId = lease.identityId !== undefined && this.stock && o.fresh !== true
      ? await this.stock.take(lease.identityId, model, chatType)
      : undefined
    if (chatId !== undefined) this.track(this.fromStock, chatId, undefined)
    chatId ??= await this.client.createChat(lease.cred, model, chatType, { signal: o.signal, requestId: o.requestId, proxyUrl: lease.proxyUrl })
    if (lease.identityId !== undefined) {
      this.track(this.owners, chatId, lease.identityId)
      this.events.emit('chat.created', { identity: lease.identityId, chatId, model, chatType, requestId: o.requestId })
    }
    return chatId
  }

  /** Create a chat ahead as `identityId`, not announced: the ready stock keeps it until a request takes it. */
  async createAhead (identityId: string, model: string, chatType: ChatType, signal: AbortSignal): Promise<string> {
    const a = this.reach(identityId)
    const chatId = await this.client.createChat(a.cred, model, chatType, { signal, proxyUrl: a.proxyUrl })
    this.track(this.owners, chatId, identityId)
    return chatId
  }

  /**
   * Whether `err`, met by the first use of `chatId`, is a ready chat the upstream refuses (not
   * found, busy, refused as invalid: `bad_request`): the caller drops it and creates a chat inline.
   * Failures that speak about the account or the site (rate limits, 5xx, timeouts) are not: they
   * go to failover and the breaker as with any chat. Asked once per chat.
   */
  readyRefused (chatId: string, err: unknown): boolean {
    if (!this.fromStock.delete(chatId)) return false
    this.stock?.started(chatId)
    return err instanceof UpstreamError && !err.requestCaused && err.kind === 'bad_request'
  }

  /** A ready chat was used (its first completion reached its first frames): the stock hears it (its refill may go). */
  used (chatId: string): void {
    if (this.fromStock.delete(chatId)) this.stock?.started(chatId)
  }

  private track<V> (m: Map<string, V> | Set<string>, chatId: string, v: V): void {
    if (m.size >= this.maxTracked) m.delete(m.keys().next().value!)
    if (m instanceof Map) m.set(chatId, v)
    else m.add(chatId)
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
