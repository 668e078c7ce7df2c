/**
 * The recent-request log behind the dashboard (issue #14): the last requests, newest first, with
 * what an operator needs to read them and no prompt text. Asynchronous operations, so that the
 * shared store (Redis) can keep one log for every replica; `MemoryRequestLog` is a ring in memory.
 */

export interface RequestRecord {
  /** When the request started (ms since epoch). */
  at: number
  requestId: string
  /** The API key's name (never the key); `anonymous` on an open gateway. */
  key: string | undefined
  route: string
  model: string | undefined
  stream: boolean | undefined
  status: number
  ttftMs: number | undefined
  durationMs: number
  tokensIn: number | undefined
  tokensOut: number | undefined
  /** The identity that answered (its id), and every identity tried before it on failover. */
  identity: string | undefined
  tried: string[]
  /** The error code the client saw, if any. */
  error: string | undefined
  /** The replica that served it (`REPLICA_ID`). */
  replica: string | undefined
}

export interface RequestLog {
  add: (r: RequestRecord) => Promise<void>
  /** The last `limit` records, newest first. */
  recent: (limit: number) => Promise<RequestRecord[]>
}

export class MemoryRequestLog implements RequestLog {
  private readonly ring: RequestRecord[] = []

  constructor (private readonly max = 200) {}

  async add (r: RequestRecord): Promise<void> {
    this.ring.push(r)
    if (this.ring.length > this.max) this.ring.shift()
  }

  async recent (limit: number): Promise<RequestRecord[]> {
    return limit <= 0 ? [] : this.ring.slice(-limit).reverse()
  }
}
