/**
 * Writing Server-Sent Events to the client: the response headers, back-pressure, the keep-alive
 * text and the final error text. Knows Node's `ServerResponse`, not Fastify, and no API's format:
 * the face gives it the texts (the OpenAI face's keep-alive is the `: keep-alive` comment,
 * Anthropic's a `ping` event).
 *
 * Keep-alive follows client silence: the keep-alive text goes out whenever nothing has been written to
 * the client for `keepAliveMs`, whatever the upstream is doing (hidden thinking, search phases and
 * dropped candidates send the client nothing).
 */
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { abortReason } from '../lifecycle.js'

export type HeaderValues = Record<string, string | number | string[] | undefined>

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
} as const

export class SseResponder {
  private timer: NodeJS.Timeout | undefined
  private readonly closed: Promise<void>
  private readonly aborted: Promise<void>

  constructor (private readonly res: ServerResponse, private readonly signal: AbortSignal, private readonly keepAliveMs: number, private readonly keepAlive: string) {
    this.closed = new Promise<void>((resolve) => {
      if (res.destroyed || res.closed) resolve()
      else res.once('close', resolve)
    })
    this.aborted = new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => resolve(), { once: true })
    })
  }

  /** Commit: send the status and headers now, and start the keep-alive clock. */
  open (headers: HeaderValues): void {
    this.res.writeHead(200, { ...headers, ...SSE_HEADERS })
    this.res.flushHeaders()
    const res = this.res
    const ping = this.keepAlive
    const timer = setTimeout(function tick () {
      if (!res.writableEnded && !res.writableNeedDrain) res.write(ping)
      timer.refresh()
    }, this.keepAliveMs)
    timer.unref()
    this.timer = timer
  }

  /**
   * Write `s` (nothing for an empty string). Waits for the client to drain, but never past the
   * request's signal (timeout, shutdown): a client that stops reading is cut off rather than
   * holding its identity forever.
   */
  async write (s: string): Promise<void> {
    if (!s) return
    this.timer?.refresh()
    if (this.res.write(s)) return
    await Promise.race([once(this.res, 'drain'), this.closed, this.aborted])
    if (this.signal.aborted && this.res.writableNeedDrain) {
      this.res.destroy()
      throw abortReason(this.signal)
    }
  }

  /** Whether the client is gone. */
  get gone (): boolean {
    return this.res.destroyed
  }

  /** After commit, a failure is the face's error text (best effort: the client may be gone). */
  fail (text: string): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(text)
  }

  /** Stop the keep-alive clock and end the response (if it was opened: otherwise the caller answers). */
  end (): void {
    if (this.timer === undefined) return
    clearTimeout(this.timer)
    if (!this.res.writableEnded) this.res.end()
  }
}
