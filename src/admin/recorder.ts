/**
 * Feeds the recent-request log (`qwenStore.requests`) from the app's events: one record per API
 * request (completions, and every other POST outside the dashboard), with the identities tried on
 * failover. No prompt text: only what the events carry.
 */
import type { GatewayEvents, RequestEvent } from '../events.js'
import type { RequestLog, RequestRecord } from './request-log.js'

/** Failover paths kept for requests still running (a request that never ends must not grow this forever). */
const MAX_PENDING = 1000

/** Whether a finished request belongs in the log: it reached a model, or it was an API POST. */
export function worthLogging (e: RequestEvent): boolean {
  if (e.completion) return true
  return e.method === 'POST' && e.route !== 'unmatched' && !e.route.includes('/admin/')
}

/** Events name identities by their label (`<id> (cookie 1)`): the log keeps the id. */
export function identityId (label: string | undefined): string | undefined {
  return label === undefined ? undefined : label.split(' ')[0]
}

/**
 * The error kind for the log: the code of the error the client got (`code`, from the error
 * handler), `client_closed`, `stream_error` for a stream that failed after it started, else the
 * HTTP status. Never the message.
 */
export function errorKind (e: RequestEvent, code: string | undefined): string | undefined {
  if (e.status === 499) return 'client_closed'
  if (code !== undefined) return code
  if (e.status >= 400) return `http_${e.status}`
  return e.completion?.error !== undefined ? 'stream_error' : undefined
}

export function toRecord (e: RequestEvent, tried: string[], replica: string | undefined, now: number, code?: string): RequestRecord {
  const c = e.completion
  return {
    at: now - (c?.durationMs ?? e.durationMs),
    requestId: e.requestId,
    key: e.key,
    route: e.route,
    model: c?.model,
    stream: c?.stream,
    status: e.status,
    ttftMs: c?.ttftMs,
    durationMs: c?.durationMs ?? e.durationMs,
    tokensIn: c?.usage?.prompt,
    tokensOut: c?.usage?.completion,
    identity: identityId(c?.identity),
    tried,
    error: errorKind(e, code),
    replica,
  }
}

export class RequestRecorder {
  private readonly tried = new Map<string, string[]>()
  private readonly codes = new Map<string, string>()
  private readonly listeners = new Set<(r: RequestRecord) => void>()
  private readonly off: Array<() => void>

  constructor (events: GatewayEvents, private readonly log: RequestLog, private readonly opts: { now: () => number; replica: string | undefined; onError: (err: unknown) => void }) {
    this.off = [
      events.on('failover', (f) => {
        const id = identityId(f.identity)!
        const list = this.tried.get(f.requestId)
        if (list) list.push(id)
        else {
          if (this.tried.size >= MAX_PENDING) this.tried.delete(this.tried.keys().next().value!)
          this.tried.set(f.requestId, [id])
        }
      }),
      events.on('request', (e) => {
        const tried = this.tried.get(e.requestId) ?? []
        const code = this.codes.get(e.requestId)
        this.tried.delete(e.requestId)
        this.codes.delete(e.requestId)
        if (!worthLogging(e)) return
        const r = toRecord(e, tried, this.opts.replica, this.opts.now(), code)
        this.log.add(r).then(() => { for (const fn of this.listeners) fn(r) }, this.opts.onError)
      }),
    ]
  }

  /** The code of the error a request answered with (the error handler's), kept until the request ends. */
  noteError (requestId: string, code: string): void {
    if (this.codes.size >= MAX_PENDING) this.codes.delete(this.codes.keys().next().value!)
    this.codes.set(requestId, code)
  }

  /** Called after each record is stored (the live stream); returns the unsubscribe function. */
  subscribe (fn: (r: RequestRecord) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  close (): void {
    for (const off of this.off) off()
    this.listeners.clear()
  }
}
