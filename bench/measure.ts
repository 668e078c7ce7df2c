/**
 * One measured autocannon window against the simulator or a child process, bracketed by CPU
 * snapshots of the child, of this process (autocannon + simulator) and of the whole machine.
 */
import os from 'node:os'
import type { Simulator } from '../src/simulator/index.js'
import { runAutocannon, type AutocannonOptions, type AutocannonResult } from './autocannon.js'
import type { Child } from './child.js'

/** A load: what autocannon sends, and the cheap check of each response. */
export interface Load {
  name: string
  what: string
  request: Pick<AutocannonOptions, 'url' | 'method' | 'headers' | 'body'>
  /** Cheap per-response check (ASCII markers only: autocannon joins body chunks as strings). */
  verifyBody: (body: string) => boolean
}

export interface Measurement {
  result: AutocannonResult
  /** CPU of the measured child over the window, microseconds (undefined without a child). */
  childCpuUs: number | undefined
  /** Wall time of the window as seen by the child, microseconds. */
  childWallUs: number | undefined
  /** The child's monotonic clock at both ends (for `--cpu-prof` windows). */
  childWindow: { start: number; end: number } | undefined
  childRssMb: number | undefined
  /** This process's CPU (autocannon + simulator) over the window, microseconds. */
  benchCpuUs: number
  benchWallUs: number
  /** CPU used by every other process on the machine over the window, microseconds (from /proc/stat). */
  otherCpuUs: number
}

/** Time for in-flight work (requests cut off when a run stops) to drain before a snapshot. */
export const SETTLE_MS = 300

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Busy CPU time of the whole machine so far (all cores), microseconds. */
export function machineBusyUs (): number {
  let ms = 0
  for (const c of os.cpus()) ms += c.times.user + c.times.nice + c.times.sys + c.times.irq
  return ms * 1000
}

/** Socket errors, timeouts, non-2xx and bad bodies of a run. */
export const problems = (r: AutocannonResult): number => r.errors + r.timeouts + r.non2xx + r.mismatches

export function describeProblems (r: AutocannonResult): string {
  const codes = Object.entries(r.statusCodeStats).map(([c, v]) => `${c}×${v.count}`).join(', ')
  return `${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx, ${r.mismatches} bad bodies, ` +
    `${r.requests.total} completed (status codes: ${codes || 'none'})`
}

function options (load: Load, connections: number, duration: number): AutocannonOptions {
  return { ...load.request, title: load.name, connections, duration, timeout: 10, verifyBody: load.verifyBody }
}

/**
 * An unmeasured run; the description of its problems, or undefined when it had none. A warm-up that
 * completed nothing is no problem by itself (500 clients on a busy machine may need more than 1 s).
 */
export async function warmUp (load: Load, sim: Simulator, connections: number, seconds: number): Promise<string | undefined> {
  if (seconds <= 0) return undefined
  const r = await runAutocannon(options(load, connections, seconds))
  sim.reset()
  return problems(r) > 0 ? describeProblems(r) : undefined
}

/** A measured run of `duration` s with `connections` connections; `child` is the process whose CPU is read. */
export async function measureWindow (load: Load, child: Child | undefined, sim: Simulator, connections: number, duration: number): Promise<Measurement> {
  // Chats created so far are of no further use; dropping them keeps the simulator's heap flat.
  sim.reset()
  await sleep(SETTLE_MS)
  const g0 = child ? await child.snapshot() : undefined
  const m0 = machineBusyUs()
  const b0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const result = await runAutocannon(options(load, connections, duration))
  await sleep(SETTLE_MS)
  const g1 = child ? await child.snapshot() : undefined
  const b1 = process.cpuUsage(b0)
  const t1 = process.hrtime.bigint()
  const m1 = machineBusyUs()
  sim.reset()
  const childCpuUs = g0 && g1 ? (g1.cpu.user - g0.cpu.user) + (g1.cpu.system - g0.cpu.system) : undefined
  const benchCpuUs = b1.user + b1.system
  return {
    result,
    childCpuUs,
    childWallUs: g0 && g1 ? g1.hrtimeUs - g0.hrtimeUs : undefined,
    childWindow: g0 && g1 ? { start: g0.hrtimeUs, end: g1.hrtimeUs } : undefined,
    childRssMb: g1 ? g1.memory.rss / 2 ** 20 : undefined,
    benchCpuUs,
    // Idle children count (negligibly) as other.
    otherCpuUs: Math.max(0, (m1 - m0) - benchCpuUs - (childCpuUs ?? 0)),
    benchWallUs: Number((t1 - t0) / 1000n),
  }
}

/** Child CPU ms per completed request; NaN without a child or without requests. */
export function cpuMsPerRequest (m: Measurement): number {
  const n = m.result.requests.total
  return m.childCpuUs !== undefined && n > 0 ? m.childCpuUs / 1000 / n : NaN
}

/** Other processes' CPU over the window, % of one core. */
export const otherCpuPercent = (m: Measurement): number => (100 * m.otherCpuUs) / m.benchWallUs
