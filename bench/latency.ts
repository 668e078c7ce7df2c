/** Gateway latency (p50/p99) at several numbers of concurrent clients, in short bounded runs. */
import type { Simulator } from '../src/simulator/index.js'
import type { Child } from './child.js'
import { gatewayLoad } from './loads.js'
import { cpuMsPerRequest, describeProblems, measureWindow, otherCpuPercent, problems, warmUp, type Measurement } from './measure.js'
import { fmt, markdownTable } from './stats.js'

export interface LatencyRow {
  stream: boolean
  connections: number
  m: Measurement
  problems: string[]
}

export async function runLatency (stream: boolean, gw: Child, sim: Simulator, concurrencies: number[], duration: number, warmup: number, log: (m: string) => void): Promise<LatencyRow[]> {
  const load = gatewayLoad(gw.url, stream)
  const rows: LatencyRow[] = []
  for (const c of concurrencies) {
    const found: string[] = []
    log(`latency ${load.name}: ${c} clients, warm-up ${warmup} s, then ${duration} s`)
    const w = await warmUp(load, sim, c, warmup)
    if (w) found.push(`warm-up: ${w}`)
    const m = await measureWindow(load, gw, sim, c, duration)
    if (problems(m.result) > 0 || m.result.requests.total === 0) found.push(describeProblems(m.result))
    rows.push({ stream, connections: c, m, problems: found })
  }
  return rows
}

export function latencyTable (rows: LatencyRow[]): string {
  return markdownTable(
    ['mode', 'clients', 'p50 ms', 'p99 ms', 'max ms', 'req/s (mean)', 'requests', 'errors', 'gateway CPU ms/req', 'other procs CPU %'],
    rows.map((r) => {
      const res = r.m.result
      return [
        `${r.stream ? 'stream' : 'non-stream'}${r.problems.length > 0 ? ' !! ERRORS' : ''}`,
        String(r.connections),
        fmt(res.latency.p50, 1),
        fmt(res.latency.p99, 1),
        fmt(res.latency.max, 0),
        fmt(res.requests.mean, 0),
        String(res.requests.total),
        String(res.errors + res.timeouts + res.non2xx + res.mismatches),
        fmt(cpuMsPerRequest(r.m), 3),
        `${fmt(otherCpuPercent(r.m), 0)}%`,
      ]
    }),
  )
}
