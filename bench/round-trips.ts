/**
 * Counts client→Redis round trips for real, from the server's side: a `MONITOR` connection sees
 * every command as Redis runs it, with the client's address (`lua` for commands inside a script).
 * One round trip is one command a client sent and waited for: a script (`EVALSHA`/`EVAL`, whatever
 * it runs inside), a `MULTI … EXEC` block, or any other single command. Commands from the gateway's
 * background work (the 5 s resync, the breaker's probe, pub/sub, conversation sweeps) and the
 * batched request-log writes are told apart by what they touch, so that a sample window can be
 * divided by the requests it served. Used by `bench/redis.ts` and `test/store-rtt.test.ts`.
 */
import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'

/** What a round trip was for. */
export type TripKind = 'request' | 'background' | 'request-log'

export interface Trip { client: string; kind: TripKind; what: string }

/**
 * The name of a script in `names` (sha1 of its Lua → name), the command otherwise. `names`: from
 * `scriptNames` (a client with our scripts defined on it).
 */
function label (cmd: string, args: string[], names: ReadonlyMap<string, string>): string {
  if (cmd === 'evalsha') return names.get(args[0] ?? '') ?? 'evalsha'
  if (cmd === 'eval') return names.get(createHash('sha1').update(args[0] ?? '').digest('hex')) ?? 'eval'
  return cmd
}

const BACKGROUND = new Set(['ping', 'time', 'subscribe', 'psubscribe', 'unsubscribe', 'info', 'client', 'select', 'command', 'hello', 'quit', 'echo', 'monitor'])

/** Background work of the gateway (not of one request), by command and key. */
function background (cmd: string, args: string[]): boolean {
  if (BACKGROUND.has(cmd)) return true
  const key = args[0] ?? ''
  if (cmd === 'set' && key.endsWith(':alive')) return true
  if (cmd === 'hgetall' && key.endsWith(':pool:h')) return true
  if (cmd === 'hvals' && key.endsWith(':accounts')) return true
  return (cmd === 'zrangebyscore' || cmd === 'zremrangebyscore') && /:conv-(idx|chats)$/.test(key)
}

/** One MONITOR line → client address, command (lower case) and its arguments; undefined for other lines. */
export function parseMonitorLine (line: string): { client: string; cmd: string; args: string[] } | undefined {
  const m = /^\+?\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line)
  if (!m) return undefined
  const args: string[] = []
  for (const a of m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)) args.push(a[1]!.replace(/\\(.)/g, '$1'))
  const cmd = (args.shift() ?? '').toLowerCase()
  return { client: m[1]!, cmd, args }
}

/** Round trips counted on a MONITOR connection until `stop()`. */
export class RoundTripCounter {
  readonly trips: Trip[] = []
  /** Clients inside MULTI (their block so far: whether it writes the request log). */
  private readonly multi = new Map<string, boolean>()
  private buf = ''

  private constructor (private readonly sock: Socket, private readonly names: ReadonlyMap<string, string>) {
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => { this.onData(d) })
    sock.on('error', () => {})
  }

  /** Start counting on Redis at `port` (resolves once MONITOR is on). `names`: sha1 → script name. */
  static async start (port: number, names: ReadonlyMap<string, string> = new Map()): Promise<RoundTripCounter> {
    const sock = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.once('connect', () => { sock.write('MONITOR\r\n') })
      sock.once('data', (d) => { if (d.toString().startsWith('+OK')) resolve(); else reject(new Error(d.toString())) })
    })
    return new RoundTripCounter(sock, names)
  }

  private onData (d: string): void {
    this.buf += d
    let i: number
    while ((i = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, i)
      this.buf = this.buf.slice(i + 2)
      const p = parseMonitorLine(line)
      if (p && p.client !== 'lua') this.command(p.client, p.cmd, p.args)
    }
  }

  private command (client: string, cmd: string, args: string[]): void {
    if (cmd === 'multi') {
      this.multi.set(client, false)
      return
    }
    const inMulti = this.multi.get(client)
    if (inMulti !== undefined) {
      if (cmd === 'exec' || cmd === 'discard') {
        this.multi.delete(client)
        this.trips.push({ client, kind: inMulti ? 'request-log' : 'request', what: 'multi' })
      } else if (cmd === 'lpush' && (args[0] ?? '').endsWith(':reqlog')) {
        this.multi.set(client, true)
      }
      return
    }
    this.trips.push({ client, kind: background(cmd, args) ? 'background' : 'request', what: label(cmd, args, this.names) })
  }

  /** How many round trips of `kind` so far. */
  count (kind: TripKind): number {
    return this.trips.filter((t) => t.kind === kind).length
  }

  /** The request round trips by what they were (`qgConvBegin: 1`, …), for a report. */
  breakdown (kind: TripKind = 'request'): Record<string, number> {
    const out: Record<string, number> = {}
    for (const t of this.trips) if (t.kind === kind) out[t.what] = (out[t.what] ?? 0) + 1
    return out
  }

  /** Forget what was counted (a new sample window). */
  reset (): void {
    this.trips.length = 0
  }

  stop (): void {
    this.sock.destroy()
  }
}

/** sha1 → name of the scripts defined on an ioredis client (ioredis keeps them in `scriptsSet`). */
export function scriptNames (client: unknown): Map<string, string> {
  const set = (client as { scriptsSet?: Record<string, { sha?: string }> }).scriptsSet ?? {}
  const out = new Map<string, string>()
  for (const [name, s] of Object.entries(set)) if (typeof s.sha === 'string') out.set(s.sha, name)
  return out
}
