/**
 * The app's typed event surface. One emitter per app instance (never process-wide: two embedded
 * gateways must not see each other's events). Publishers: the turn opener, the pool, the token
 * service, the chat lifecycle service and the completion route. Subscribers: logs now; metrics and
 * the dashboard later. A throwing subscriber never breaks the request that published.
 */
import type { Transition } from './health.js'

export interface CompletionEvent {
  requestId: string
  model: string
  stream: boolean
  identity: string | undefined
  /** HTTP status the client saw (499: the client left). */
  status: number
  outcome: 'ok' | 'error' | 'client_closed'
  attempts: number
  ttftMs: number | undefined
  durationMs: number
  usage: { prompt: number; completion: number; reasoning: number } | undefined
  finishReason: string | undefined
  chatId: string | undefined
  error: string | undefined
  /** A conversation entry now points at `chatId`: the chat is kept for the next turn. */
  remembered?: boolean
}

/** One per request of any route, when its response is over (the access line). */
export interface RequestEvent {
  requestId: string
  method: string
  /** The route's URL pattern (`/v1/models/:id`), or `unmatched` for a 404. */
  route: string
  /** HTTP status the client saw (499: the client left before the response ended). */
  status: number
  durationMs: number
  /** The name of the API key presented (never the key), `anonymous` on an open gateway, undefined when not authenticated. */
  key: string | undefined
  /** The request's completion, when it got as far as a model. */
  completion: CompletionEvent | undefined
}

export interface GatewayEventMap {
  /** One per request of any route, after its response (the access-log plugin publishes it). */
  request: RequestEvent
  /** One per completion that got as far as a model. */
  completion: CompletionEvent
  /** An attempt failed before anything reached the client and the next identity is tried. */
  failover: { requestId: string; identity: string; code: string; error: string; attempt: number }
  /** A breaker transition or a cooldown that started. */
  'identity.health': { identity: string; label: string; transition?: Transition; cooldown?: { kind: string; until: number } }
  'token.refreshed': { identity: string; label: string; expiresAt: number | undefined }
  'token.failed': { identity: string; label: string; error: string }
  /** An upstream chat was created (by the identity that owns it); `chatType` says what for (`t2t`, `search`, `t2i`, `image_edit`, `t2v`). */
  'chat.created': { identity: string; chatId: string; model: string; chatType: string; requestId: string }
  'chat.deleted': { identity: string; chatId: string }
  /**
   * A conversation entry left the map without being continued (it expired, was evicted, or a failed
   * continuation abandoned it): its upstream chat can no longer be used. `identity` is the pool
   * identity that owns the chat, undefined for a client-mode caller's own account.
   */
  'conversation.expired': { identity: string | undefined; chatId: string; reason: 'expired' | 'evicted' | 'abandoned' }
  /** A chat deletion by the chat-deletion plugin settled: deleted, already gone, or failed after its retries. */
  'chat.deletion': { identity: string; chatId: string; result: 'deleted' | 'gone' | 'failed'; attempts: number; error?: string }
  /** One attachment put on the upstream for an identity (`cached`: the upload cache or a shared flight served it). */
  upload: UploadEvent
}

export interface UploadEvent {
  requestId: string
  /** The identity's masked label. */
  identity: string
  kind: string
  bytes: number
  result: 'uploaded' | 'cached' | 'failed'
}

export type GatewayEventName = keyof GatewayEventMap
type Listener<K extends GatewayEventName> = (payload: GatewayEventMap[K]) => void

export class GatewayEvents {
  private readonly listeners = new Map<GatewayEventName, Set<Listener<never>>>()

  constructor (private readonly onListenerError: (err: unknown, event: GatewayEventName) => void = () => {}) {}

  /** Subscribe; returns the unsubscribe function. */
  on<K extends GatewayEventName> (event: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(event)
    if (!set) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(fn as Listener<never>)
    return () => { set.delete(fn as Listener<never>) }
  }

  /** Whether anyone listens (publishers skip building payloads nobody reads). */
  has (event: GatewayEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0
  }

  emit<K extends GatewayEventName> (event: K, payload: GatewayEventMap[K]): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const fn of set) {
      try {
        (fn as Listener<K>)(payload)
      } catch (err) {
        this.onListenerError(err, event)
      }
    }
  }

  clear (): void {
    this.listeners.clear()
  }
}
