/**
 * One request's lifetime, framework-free: an abort signal fed by the client leaving (from the
 * response side: `request.signal` is unreliable on POST, FASTIFY §3.2), the whole-request budget,
 * and shutdown. The `request-lifecycle` plugin owns the registry of live scopes.
 */
import type { ServerResponse } from 'node:http'
import { GatewayError, UpstreamError } from './errors.js'

/** Why a request's signal was aborted. */
export class RequestAborted extends Error {
  constructor (readonly kind: 'client_closed' | 'timeout' | 'shutdown') {
    super(`request aborted: ${kind}`)
    this.name = 'RequestAborted'
  }

  /** The error the client sees (none for a client that left). */
  toError (): GatewayError {
    if (this.kind === 'timeout') return new UpstreamError('timeout', 'The request took longer than the gateway allows (REQUEST_TIMEOUT_MS)')
    return new GatewayError('The gateway is shutting down; retry the request', { status: 503, type: 'server_error', code: 'server_shutting_down', headers: { 'retry-after': '1' } })
  }
}

/** Why `signal` was aborted, or undefined. */
export function abortReason (signal: AbortSignal): RequestAborted | undefined {
  if (!signal.aborted) return undefined
  return signal.reason instanceof RequestAborted ? signal.reason : new RequestAborted('client_closed')
}

/** Where live scopes register (the lifecycle plugin's set, which also notices when it empties). */
export interface ScopeRegistry {
  add (scope: RequestScope): unknown
  delete (scope: RequestScope): unknown
}

export class RequestScope {
  private readonly ac = new AbortController()
  private readonly timer: NodeJS.Timeout
  private readonly onClose: () => void

  constructor (private readonly res: ServerResponse, timeoutMs: number, private readonly registry: ScopeRegistry) {
    this.onClose = () => { if (!res.writableEnded) this.abort(new RequestAborted('client_closed')) }
    res.once('close', this.onClose)
    this.timer = setTimeout(() => this.abort(new RequestAborted('timeout')), timeoutMs)
    this.timer.unref()
    registry.add(this)
  }

  get signal (): AbortSignal {
    return this.ac.signal
  }

  /** Why the request was aborted, or undefined while it runs. */
  reason (): RequestAborted | undefined {
    return abortReason(this.ac.signal)
  }

  /** Throw the abort reason if the request was aborted. */
  check (): void {
    const r = this.reason()
    if (r) throw r
  }

  abort (why: RequestAborted): void {
    if (!this.ac.signal.aborted) this.ac.abort(why)
  }

  /**
   * Close the client's connection once this response is finished, rather than keeping it alive
   * (a closing server would otherwise wait for the client's keep-alive timeout).
   */
  closeConnectionWhenDone (): void {
    const res = this.res
    const close = (): void => { res.socket?.destroySoon() }
    if (res.writableFinished) close()
    else res.once('finish', close)
  }

  /** The request is over: stop the timer and leave the registry. Idempotent. */
  end (): void {
    clearTimeout(this.timer)
    this.res.off('close', this.onClose)
    this.registry.delete(this)
  }
}
