/**
 * The gateway under benchmark, alone in its own process so that its CPU time can be measured apart
 * from the load generator and the simulator (see `bench/run.ts`).
 *
 * Input: env `BENCH_QWEN_BASE_URL` (the simulator) and `BENCH_COOKIES` (a JSON array of cookies).
 * The gateway logs as in production (level info: one access-log line per completion) into /dev/null;
 * `BENCH_LOG=0` turns logging off.
 * Output: one JSON line on stdout once listening and the identity pool is ready:
 *   {"port": <number>}
 * Commands, either as an IPC message (when spawned with an `ipc` channel) or as a stdin line:
 *   cpu    → reply {"cpu": {"user": µs, "system": µs}, "hrtimeUs": µs, "memory": {"rss": bytes, "heapUsed": bytes}}
 *   close  → close the server and exit 0
 * The process also closes when its parent goes away (IPC disconnect or stdin end).
 */
import { createWriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { buildServer } from '../src/build.js'

interface CpuReply {
  cpu: NodeJS.CpuUsage
  /** Monotonic clock in microseconds (the clock of `--cpu-prof` timestamps). */
  hrtimeUs: number
  memory: { rss: number; heapUsed: number }
}

function fail (message: string): never {
  process.stderr.write(`gateway-child: ${message}\n`)
  process.exit(1)
}

async function main (): Promise<void> {
  const qwenBaseUrl = process.env.BENCH_QWEN_BASE_URL
  if (!qwenBaseUrl) fail('BENCH_QWEN_BASE_URL is not set')
  let cookies: unknown
  try {
    cookies = JSON.parse(process.env.BENCH_COOKIES ?? '[]')
  } catch {
    fail('BENCH_COOKIES is not JSON')
  }
  if (!Array.isArray(cookies) || !cookies.every((c) => typeof c === 'string')) fail('BENCH_COOKIES must be a JSON array of strings')

  const logger = process.env.BENCH_LOG === '0'
    ? false
    : { level: 'info', stream: createWriteStream('/dev/null') }
  const app = await buildServer({ qwenBaseUrl, cookies }, { logger })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.qwenTokens.ready()
  const addr = app.server.address()
  if (addr === null || typeof addr === 'string') fail('unexpected server address')

  let closing = false
  const close = (): void => {
    if (closing) return
    closing = true
    const hard = setTimeout(() => process.exit(1), 5_000)
    hard.unref()
    app.close().then(() => process.exit(0), () => process.exit(1))
  }

  const cpuReply = (): CpuReply => {
    const m = process.memoryUsage()
    return { cpu: process.cpuUsage(), hrtimeUs: Number(process.hrtime.bigint() / 1000n), memory: { rss: m.rss, heapUsed: m.heapUsed } }
  }

  const command = (cmd: string, answer: (r: CpuReply) => void): void => {
    switch (cmd.trim()) {
      case 'cpu': return answer(cpuReply())
      case 'close': return close()
      default:
    }
  }

  if (process.send) {
    process.on('message', (msg: unknown) => {
      if (typeof msg === 'string') command(msg, (r) => process.send?.(r))
    })
    process.on('disconnect', close)
  }
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => command(line, (r) => process.stdout.write(`${JSON.stringify(r)}\n`)))
  // Without an IPC channel, stdin is the link to the parent: its end means the parent is gone.
  rl.on('close', () => { if (!process.send) close() })

  process.once('SIGTERM', close)
  process.once('SIGINT', close)
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`)
}

main().catch((err: unknown) => fail((err as Error).stack ?? String(err)))
