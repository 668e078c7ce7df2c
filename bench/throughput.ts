/**
 * Throughput scenarios (the original benchmark): one warm-up, then one measured window each, with
 * the gateway's CPU per request against the 1 ms budget; and, under `BENCH_PROFILE=1`, the gateway's
 * hotspots over each of its windows.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Simulator } from '../src/simulator/index.js'
import type { Child } from './child.js'
import type { CheckedLoad } from './loads.js'
import { cpuMsPerRequest, describeProblems, measureWindow, otherCpuPercent, problems, warmUp, type Measurement } from './measure.js'
import { formatRows, summarizeProfile } from './profile.js'
import { fmt, markdownTable } from './stats.js'

/** The per-request CPU budget of the gateway, in milliseconds. */
export const TARGET_CPU_MS = 1

export interface ThroughputRow {
  load: CheckedLoad
  /** The gateway's CPU is read (its scenarios), not for the simulator rows. */
  gateway: boolean
  m: Measurement
  problems: string[]
}

export async function runThroughput (
  load: CheckedLoad, gateway: Child | undefined, sim: Simulator, connections: number, warmup: number, duration: number, log: (m: string) => void,
): Promise<ThroughputRow> {
  const found: string[] = []
  if (warmup > 0) log(`${load.name}: warm-up ${warmup} s`)
  const w = await warmUp(load, sim, connections, warmup)
  if (w) found.push(`the (unmeasured) warm-up had ${w}`)
  log(`${load.name}: measuring ${duration} s`)
  const m = await measureWindow(load, gateway, sim, connections, duration)
  if (problems(m.result) > 0 || m.result.requests.total === 0) found.push(describeProblems(m.result))
  return { load, gateway: gateway !== undefined, m, problems: found }
}

export function throughputReport (rows: ThroughputRow[]): string[] {
  const table = markdownTable(
    ['scenario', 'req/s (mean)', 'p50 ms', 'p99 ms', 'requests', 'errors', 'non-2xx', 'bad body', 'gateway CPU ms/req', 'gateway CPU %', 'bench proc CPU ms/req', 'other procs CPU %'],
    rows.map(({ load, m, problems: p }) => {
      const r = m.result
      const n = r.requests.total
      return [
        p.length > 0 ? `${load.name} !! ERRORS` : load.name,
        r.requests.mean.toFixed(0),
        r.latency.p50.toFixed(0),
        r.latency.p99.toFixed(0),
        String(n),
        String(r.errors + r.timeouts),
        String(r.non2xx),
        String(r.mismatches),
        fmt(cpuMsPerRequest(m), 3),
        m.childCpuUs !== undefined && m.childWallUs ? `${((100 * m.childCpuUs) / m.childWallUs).toFixed(0)}%` : '—',
        n > 0 ? (m.benchCpuUs / 1000 / n).toFixed(3) : '—',
        `${fmt(otherCpuPercent(m), 0)}%`,
      ]
    }),
  )
  const out = [table, '', 'Scenarios:', ...rows.map((r) => `  ${r.load.name}: ${r.load.what}`), '']
  for (const r of rows) if (r.m.childRssMb !== undefined) out.push(`  gateway RSS after "${r.load.name}": ${r.m.childRssMb.toFixed(0)} MiB`)
  for (const r of rows) {
    const ms = cpuMsPerRequest(r.m)
    if (r.gateway && Number.isFinite(ms)) out.push(`Target <= ${TARGET_CPU_MS} ms gateway CPU/request — ${r.load.name}: ${ms.toFixed(3)} ms → ${ms <= TARGET_CPU_MS ? 'MET' : 'MISSED'}`)
  }
  return out
}

/** The gateway's hotspots over each of its throughput windows (`BENCH_PROFILE=1`). */
export function profileReport (profileDir: string, rows: ThroughputRow[], root: string): string {
  const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
  if (files.length === 0) return `\nno .cpuprofile in ${profileDir} (did the child exit normally?)`
  const file = join(profileDir, files[0]!)
  const sections = [`\nGateway CPU profile: ${file}`]
  for (const r of rows) {
    const w = r.m.childWindow
    if (!w) continue
    const sum = summarizeProfile(file, [w], root, 25)
    sections.push(
      '',
      `=== ${r.load.name}: ${sum.busyMs.toFixed(0)} ms busy, ${sum.idleMs.toFixed(0)} ms idle in ${sum.samples} samples` +
        `${sum.wholeProfile ? ' (window did not match: WHOLE profile)' : ''} ===`,
      formatRows('By area (self time):', sum.areas.slice(0, 12)),
      formatRows('By file (self time):', sum.files.slice(0, 15)),
      formatRows('By function (self time):', sum.functions),
    )
  }
  return sections.join('\n')
}
