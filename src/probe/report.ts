/** The probe report as text: one line per expectation, then a summary. */
import type { ProbeReport } from './run.js'

/** `ok    name (detail)` or `DRIFT name: detail`, one line each, then the verdict. */
export function formatReport (r: ProbeReport): string {
  const lines = [`qwen-gateway probe of ${r.upstream}`]
  for (const c of r.checks) {
    lines.push(c.ok
      ? `ok    ${c.name}${c.detail && c.detail !== 'ok' ? ` (${c.detail})` : ''}`
      : `DRIFT ${c.name}: ${c.detail}`)
  }
  const failed = r.checks.filter((c) => !c.ok).length
  lines.push(failed === 0
    ? `clean: ${r.checks.length} checks passed, ${r.requests} upstream requests`
    : `drift: ${failed} of ${r.checks.length} checks failed, ${r.requests} upstream requests`)
  return lines.join('\n') + '\n'
}
