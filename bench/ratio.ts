/**
 * Gateway CPU per request as a ratio to the zero-transform floor, from one interleaved run:
 * gateway and floor windows alternate (G F, F G, …; same load, duration and connections) so that
 * the machine's noise hits both alike; each side's figure is the median of its windows.
 */
import type { Simulator } from '../src/simulator/index.js'
import type { Child } from './child.js'
import { floorLoad, gatewayLoad } from './loads.js'
import { cpuMsPerRequest, describeProblems, measureWindow, otherCpuPercent, problems, warmUp, type Measurement } from './measure.js'
import { fmt, interleaveOrder, markdownTable, median, ratio, type Side } from './stats.js'

export interface RatioConfig {
  pairs: number
  /** Seconds per window. */
  duration: number
  /** Seconds of warm-up per side before the first window. */
  warmup: number
  connections: number
}

export interface RatioResult {
  stream: boolean
  windows: Array<{ side: Side; m: Measurement }>
  gatewayMs: number
  floorMs: number
  ratio: number
  /** Problems of the warm-ups and windows, described (empty: none). */
  problems: string[]
}

export async function runRatio (stream: boolean, gw: Child, floor: Child, sim: Simulator, cfg: RatioConfig, log: (m: string) => void): Promise<RatioResult> {
  const loads = { gateway: gatewayLoad(gw.url, stream), floor: floorLoad(floor.url, stream) }
  const children = { gateway: gw, floor }
  const found: string[] = []
  for (const side of ['gateway', 'floor'] as const) {
    log(`ratio ${loads[side].name}: warm-up ${cfg.warmup} s`)
    const w = await warmUp(loads[side], sim, cfg.connections, cfg.warmup)
    if (w) found.push(`${loads[side].name} warm-up: ${w}`)
  }
  const windows: RatioResult['windows'] = []
  const order = interleaveOrder(cfg.pairs)
  for (const [i, side] of order.entries()) {
    log(`ratio ${loads[side].name}: window ${i + 1}/${order.length}, ${cfg.duration} s`)
    const m = await measureWindow(loads[side], children[side], sim, cfg.connections, cfg.duration)
    if (problems(m.result) > 0 || m.result.requests.total === 0) found.push(`${loads[side].name} window ${i + 1}: ${describeProblems(m.result)}`)
    windows.push({ side, m })
  }
  const ms = (side: Side): number => median(windows.filter((w) => w.side === side).map((w) => cpuMsPerRequest(w.m)))
  const gatewayMs = ms('gateway')
  const floorMs = ms('floor')
  return { stream, windows, gatewayMs, floorMs, ratio: ratio(gatewayMs, floorMs), problems: found }
}

export function ratioTable (results: RatioResult[]): string {
  const list = (r: RatioResult, side: Side): string => r.windows.filter((w) => w.side === side).map((w) => fmt(cpuMsPerRequest(w.m), 3)).join(' ')
  const reqs = (r: RatioResult, side: Side): string => fmt(median(r.windows.filter((w) => w.side === side).map((w) => w.m.result.requests.mean)), 0)
  return markdownTable(
    ['mode', 'gateway CPU ms/req (windows)', 'gateway median', 'floor CPU ms/req (windows)', 'floor median', 'ratio', 'gateway req/s', 'floor req/s', 'other procs CPU % (median)'],
    results.map((r) => [
      `${r.stream ? 'stream' : 'non-stream'}${r.problems.length > 0 ? ' !! ERRORS' : ''}`,
      list(r, 'gateway'),
      fmt(r.gatewayMs, 3),
      list(r, 'floor'),
      fmt(r.floorMs, 3),
      `${fmt(r.ratio, 2)}×`,
      reqs(r, 'gateway'),
      reqs(r, 'floor'),
      `${fmt(median(r.windows.map((w) => otherCpuPercent(w.m))), 0)}%`,
    ]),
  )
}
