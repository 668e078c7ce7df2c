/**
 * The command protocol shared by the benchmark's child processes (`gateway-child.ts`,
 * `floor-child.ts`); the parent side is `child.ts`.
 *
 * Commands, either as an IPC message (when spawned with an `ipc` channel) or as a stdin line:
 *   cpu    → reply {@link ChildReply} (CPU time, monotonic clock, memory, open TCP sockets)
 *   gc     → run a full garbage collection (when started with `--expose-gc`), then the same reply
 *   close  → call `close`, then exit 0 (1 when it fails or takes more than 5 s)
 * The process also closes on SIGTERM/SIGINT and when its parent goes away (IPC disconnect, or
 * stdin end when there is no IPC channel).
 */
import { createInterface } from 'node:readline'

export interface ChildReply {
  cpu: NodeJS.CpuUsage
  /** Monotonic clock in microseconds (the clock of `--cpu-prof` timestamps). */
  hrtimeUs: number
  memory: { rss: number; heapUsed: number }
  /** Open TCP sockets of the process (client and server side; listening sockets not included). */
  sockets: number
}

function reply (): ChildReply {
  const m = process.memoryUsage()
  const sockets = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
  return { cpu: process.cpuUsage(), hrtimeUs: Number(process.hrtime.bigint() / 1000n), memory: { rss: m.rss, heapUsed: m.heapUsed }, sockets }
}

export function fail (who: string, message: string): never {
  process.stderr.write(`${who}: ${message}\n`)
  process.exit(1)
}

/** Answer the parent's commands; `close` ends whatever the child serves (the process exits after it). */
export function serveCommands (close: () => Promise<void>): void {
  let closing = false
  const shutdown = (): void => {
    if (closing) return
    closing = true
    const hard = setTimeout(() => process.exit(1), 5_000)
    hard.unref()
    close().then(() => process.exit(0), () => process.exit(1))
  }
  const gc = (globalThis as { gc?: () => void }).gc

  const command = (cmd: string, answer: (r: ChildReply) => void): void => {
    switch (cmd.trim()) {
      case 'cpu': return answer(reply())
      case 'gc':
        gc?.()
        return answer(reply())
      case 'close': return shutdown()
      default:
    }
  }

  if (process.send) {
    process.on('message', (msg: unknown) => {
      if (typeof msg === 'string') command(msg, (r) => process.send?.(r))
    })
    process.on('disconnect', shutdown)
  }
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => command(line, (r) => process.stdout.write(`${JSON.stringify(r)}\n`)))
  // Without an IPC channel, stdin is the link to the parent: its end means the parent is gone.
  rl.on('close', () => { if (!process.send) shutdown() })

  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)
}
