/** The TTFT phase's results and report (pure: tested in `test/latency-bench-stats.test.ts`). */
import { fmt, markdownTable, median, percentile } from './stats.js'

export interface TtftRow {
  target: string
  clients: number
  samples: number[]
  errors: number
  /**
   * Per sample with a simulator log entry: ms from the client's send to the simulator receiving the
   * completion, and from there to the first content at the client (the two add up to the sample).
   */
  toUpstream?: number[]
  fromUpstream?: number[]
}

export interface TtftResult { rows: TtftRow[]; firstFrameMs: number; chatNewMs: number; problems: string[] }

const p50 = (xs: number[] | undefined): number => (xs && xs.length > 0 ? median(xs) : NaN)
const plus = (x: number): string => `${x >= 0 ? '+' : ''}${fmt(x, 1)} ms`

/**
 * The report: one table, and the verdict on the targets (+5 ms p50 at 1 client, +15 ms at 50, with
 * ready chats), each with where the added time goes: before the simulator got the completion
 * (client → gateway → upstream request) and after (first frame → gateway → client), each compared
 * with the floor's own part at the same concurrency.
 */
export function ttftReport (r: TtftResult): string[] {
  const floors = new Map(r.rows.filter((x) => x.target.startsWith('simulator')).map((x) => [x.clients, x]))
  const table = markdownTable(
    ['target', 'clients', 'samples', 'p50 ms', 'p99 ms', 'max ms', 'p50 over the floor', 'p50 client → simulator', 'p50 simulator → content', 'errors'],
    r.rows.map((x) => {
      const f = floors.get(x.clients)
      return [x.target, String(x.clients), String(x.samples.length), fmt(median(x.samples), 1), fmt(percentile(x.samples, 99), 1), fmt(Math.max(...x.samples), 1),
        x.target.startsWith('simulator') || f === undefined ? '' : plus(median(x.samples) - median(f.samples)),
        fmt(p50(x.toUpstream), 1), fmt(p50(x.fromUpstream), 1), String(x.errors)]
    }),
  )
  const out = [table, '']
  for (const x of r.rows.filter((y) => y.target.startsWith('gateway, ready'))) {
    const f = floors.get(x.clients)
    if (f === undefined) continue
    const added = median(x.samples) - median(f.samples)
    const goal = x.clients <= 1 ? 5 : 15
    const split = p50(x.toUpstream) - p50(f.toUpstream)
    const where = Number.isNaN(split) ? '' : ` (request path ${plus(split)}, first-frame path ${plus(p50(x.fromUpstream) - p50(f.fromUpstream))})`
    out.push(`Ready chats at ${x.clients} client(s): ${plus(added)} p50 over the floor${where} (target <= ${goal} ms) → ${added <= goal ? 'MET' : 'MISSED'}`)
  }
  return out
}
