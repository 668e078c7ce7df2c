/**
 * Incremental parser for `text/event-stream` bodies.
 *
 * It works on bytes: each chunk is scanned once for line feeds (a byte that never occurs inside a
 * multi-byte UTF-8 sequence), so consumed bytes are never re-scanned and a character split across
 * chunks is decoded only once its line is complete. Lines end in LF or CRLF. `data:` lines are
 * joined with "\n" and dispatched on the blank line that ends an event; comments (`:`) and the
 * other fields (`event`, `id`, `retry`) are ignored because the upstream does not use them. A bare
 * line that starts with `{` (JSON without any SSE framing) is dispatched as an event by itself.
 *
 * Memory is bounded by one budget, `maxBytes`: the unfinished line and the data of the event being
 * assembled together never exceed it. Going over it (one endless line, or endless short `data:`
 * lines that never end the event) throws an UpstreamError of kind `limit`.
 */
import { UpstreamError } from './errors.js'

const LF = 0x0a
const CR = 0x0d
const COLON = 0x3a
const SPACE = 0x20
const BRACE = 0x7b
const DATA = Buffer.from('data')

export class SseParser {
  private pending: Buffer[] = []
  private pendingLength = 0
  private data: string[] = []
  /** Bytes of the event being assembled (its data lines and the line feeds that will join them). */
  private dataBytes = 0
  /** Number of events dispatched so far. */
  events = 0

  constructor (
    private readonly onData: (data: string) => void,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  push (chunk: Buffer): void {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(LF, start)
      if (nl === -1) break
      if (this.pendingLength > 0) {
        this.pending.push(chunk.subarray(start, nl))
        const line = Buffer.concat(this.pending, this.pendingLength + nl - start)
        this.pending = []
        this.pendingLength = 0
        this.line(line)
      } else {
        this.line(chunk.subarray(start, nl))
      }
      start = nl + 1
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start)
      this.pendingLength += rest.length
      if (this.pendingLength > this.maxBytes) throw tooLarge('line', this.maxBytes)
      if (this.pendingLength + this.dataBytes > this.maxBytes) throw tooLarge('event', this.maxBytes)
      this.pending.push(rest)
    }
  }

  /** End of input: a last event that was not followed by a blank line is still dispatched. */
  end (): void {
    if (this.pendingLength > 0) {
      const line = Buffer.concat(this.pending, this.pendingLength)
      this.pending = []
      this.pendingLength = 0
      this.line(line)
    }
    this.dispatch()
  }

  private line (buf: Buffer): void {
    let end = buf.length
    if (end > 0 && buf[end - 1] === CR) end--
    if (end === 0) { this.dispatch(); return }
    if (buf[0] === COLON) return
    // A bare JSON line with no field (the 2026 site's anti-bot answer inside a stream) is an event of
    // its own, so that it is classified instead of silently dropped (PROTOCOL-2026 §3).
    if (buf[0] === BRACE) {
      this.dispatch()
      if (end > this.maxBytes) throw tooLarge('line', this.maxBytes)
      this.events++
      this.onData(buf.toString('utf8', 0, end))
      return
    }
    if (end >= 5 && buf[4] === COLON && buf.compare(DATA, 0, 4, 0, 4) === 0) {
      const from = end > 5 && buf[5] === SPACE ? 6 : 5
      this.dataBytes += end - from + (this.data.length > 0 ? 1 : 0)
      if (this.dataBytes > this.maxBytes) throw tooLarge('event', this.maxBytes)
      this.data.push(buf.toString('utf8', from, end))
    }
  }

  private dispatch (): void {
    if (this.data.length === 0) return
    const data = this.data.length === 1 ? this.data[0]! : this.data.join('\n')
    this.data = []
    this.dataBytes = 0
    this.events++
    this.onData(data)
  }
}

function tooLarge (what: 'line' | 'event', limit: number): UpstreamError {
  return new UpstreamError('limit', `an upstream SSE ${what} exceeded ${limit} bytes`)
}
