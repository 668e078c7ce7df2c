/** Pure helpers of the benchmark (order of interleaved windows, medians, ratios, memory per stream). */

export type Side = 'gateway' | 'floor'

/**
 * The order of `pairs` gateway/floor window pairs, alternating which side goes first in each pair
 * (G F, F G, G F, …) so that a drift of the machine's speed during the run hits both sides alike.
 */
export function interleaveOrder (pairs: number): Side[] {
  if (!Number.isInteger(pairs) || pairs < 1) throw new RangeError(`pairs must be a positive integer, got ${pairs}`)
  const out: Side[] = []
  for (let i = 0; i < pairs; i++) out.push(...(i % 2 === 0 ? ['gateway', 'floor'] as const : ['floor', 'gateway'] as const))
  return out
}

/** The median (mean of the two middle values for an even count); NaN for an empty list. */
export function median (xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** The nearest-rank percentile `p` (0–100) of `xs`; NaN for an empty list. */
export function percentile (xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

/** `a / b`, NaN when either is not a positive finite number. */
export function ratio (a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0 ? a / b : NaN
}

/** Memory growth per open stream in KiB: (open − baseline) bytes over `streams`; NaN without streams. */
export function growthPerStreamKiB (baselineBytes: number, openBytes: number, streams: number): number {
  return streams > 0 ? (openBytes - baselineBytes) / 1024 / streams : NaN
}

/** A number for a report: fixed decimals, or `—` when it is not finite. */
export function fmt (x: number, decimals: number): string {
  return Number.isFinite(x) ? x.toFixed(decimals) : '—'
}

/** A markdown table: the first column left-aligned, the others right-aligned. */
export function markdownTable (head: readonly string[], rows: readonly (readonly string[])[]): string {
  // At least 2 wide, so that a right-aligned separator is `-:` (a lone `:` is no separator).
  const widths = head.map((h, i) => Math.max(2, h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    `| ${widths.map((w, i) => (i === 0 ? (cells[i] ?? '').padEnd(w) : (cells[i] ?? '').padStart(w))).join(' | ')} |`
  const sep = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`
  return [line(head), sep, ...rows.map(line)].join('\n')
}
