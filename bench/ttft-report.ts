/** The TTFT phase's results and report (pure: tested in `test/latency-bench-stats.test.ts`). */
import { fmt, markdownTable, median, percentile } from './stats.js'

export interface TtftRow {
  target: string
  clients: number
  samples: number[]
  errors: number
}

export interface TtftResult { rows: TtftRow[]; firstFrameMs: number; chatNewMs: number; problems: string[] }

/** The report: one table, and the verdict on the targets (+5 ms p50 at 1 client, +15 ms at 50, with ready chats). */
export function ttftReport (r: TtftResult): string[] {
  const floor = new Map(r.rows.filter((x) => x.target.startsWith('simulator')).map((x) => [x.clients, median(x.samples)]))
  const table = markdownTable(
    ['target', 'clients', 'samples', 'p50 ms', 'p99 ms', 'max ms', 'p50 over the floor', 'errors'],
    r.rows.map((x) => {
      const p50 = median(x.samples)
      const f = floor.get(x.clients)
      return [x.target, String(x.clients), String(x.samples.length), fmt(p50, 1), fmt(percentile(x.samples, 99), 1), fmt(Math.max(...x.samples), 1),
        x.target.startsWith('simulator') || f === undefined ? '' : `+${fmt(p50 - f, 1)} ms`, String(x.errors)]
    }),
  )
  const out = [table, '']
  for (const x of r.rows.filter((y) => y.target.startsWith('gateway, ready'))) {
    const f = floor.get(x.clients)
    if (f === undefined) continue
    const added = median(x.samples) - f
    const goal = x.clients <= 1 ? 5 : 15
    out.push(`Ready chats at ${x.clients} client(s): +${fmt(added, 1)} ms p50 over the floor (target <= ${goal} ms) → ${added <= goal ? 'MET' : 'MISSED'}`)
  }
  return out
}
