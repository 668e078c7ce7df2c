// @ts-check
import { useState } from 'preact/hooks'
import { clock, num, percentile } from './format.js'
import { html } from './html.js'

const MINUTE = 60_000
const BUCKETS = 30

/**
 * A sparkline over equal buckets.
 * @param {{ values: number[], label: string }} p
 */
function Spark ({ values, label }) {
  const w = 160
  const hgt = 32
  const max = Math.max(1, ...values)
  const step = w / Math.max(1, values.length - 1)
  const pts = values.map((v, k) => `${(k * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`).join(' ')
  return html`<svg class="spark" width=${w} height=${hgt} viewBox=${`0 0 ${w} ${hgt}`} role="img" aria-label=${label}><polyline points=${pts} /></svg>`
}

/** @param {any[]} rs @param {number} now @param {(r: any[]) => number} f */
function perMinute (rs, now, f) {
  const out = []
  for (let k = BUCKETS - 1; k >= 0; k--) {
    const from = now - (k + 1) * MINUTE
    out.push(f(rs.filter((r) => r.at > from && r.at <= from + MINUTE)))
  }
  return out
}

/** @param {{ requests: any[], now: number }} p */
export function Traffic ({ requests, now }) {
  const lastMinute = requests.filter((r) => r.at > now - MINUTE)
  const ttfts = requests.map((r) => r.ttftMs).filter((x) => typeof x === 'number')
  const tokensIn = requests.reduce((s, r) => s + (r.tokensIn ?? 0), 0)
  const tokensOut = requests.reduce((s, r) => s + (r.tokensOut ?? 0), 0)
  /** @type {Record<string, number>} */
  const errors = {}
  for (const r of requests) if (r.status >= 400) errors[r.error ?? `http_${r.status}`] = (errors[r.error ?? `http_${r.status}`] ?? 0) + 1
  /** @type {Map<string, any[]>} */
  const models = new Map()
  for (const r of requests) if (r.model) models.set(r.model, [...(models.get(r.model) ?? []), r])
  const p50 = percentile(ttfts, 50)
  const p95 = percentile(ttfts, 95)
  return html`
    <section>
      <h2>Traffic <small class="muted">(the last ${requests.length} requests)</small></h2>
      <div class="cards">
        <div class="card"><span>requests / min</span><b data-testid="rpm">${lastMinute.length}</b><${Spark} label="requests per minute" values=${perMinute(requests, now, (rs) => rs.length)} /></div>
        <div class="card"><span>TTFT p50 / p95</span><b>${p50 === null ? '—' : `${p50} ms`} / ${p95 === null ? '—' : `${p95} ms`}</b><${Spark} label="median TTFT per minute" values=${perMinute(requests, now, (rs) => percentile(rs.map((r) => r.ttftMs).filter((x) => typeof x === 'number'), 50) ?? 0)} /></div>
        <div class="card"><span>tokens in / out</span><b>${num(tokensIn)} / ${num(tokensOut)}</b><${Spark} label="tokens per minute" values=${perMinute(requests, now, (rs) => rs.reduce((s, r) => s + (r.tokensIn ?? 0) + (r.tokensOut ?? 0), 0))} /></div>
        <div class="card"><span>errors by kind</span>${Object.keys(errors).length === 0 ? html`<b>none</b>` : html`<ul class="kinds">${Object.entries(errors).map(([k, n]) => html`<li><code>${k}</code> ${n}</li>`)}</ul>`}</div>
      </div>
      ${models.size > 0 && html`
        <table class="models"><thead><tr><th>model</th><th>requests</th><th>errors</th><th>TTFT p50</th><th>tokens out</th></tr></thead>
          <tbody>${[...models].map(([m, rs]) => html`<tr><td>${m}</td><td class="num">${rs.length}</td><td class="num">${rs.filter((r) => r.status >= 400).length}</td>
            <td class="num">${percentile(rs.map((r) => r.ttftMs).filter((x) => typeof x === 'number'), 50) ?? '—'}</td><td class="num">${num(rs.reduce((s, r) => s + (r.tokensOut ?? 0), 0))}</td></tr>`)}</tbody></table>`}
    </section>`
}

const FILTERS = ['model', 'identity', 'status']

function readFilters () {
  const q = new URLSearchParams(location.search)
  return Object.fromEntries(FILTERS.map((f) => [f, q.get(f) ?? '']))
}

/** @param {{ requests: any[], identities: any[] }} p */
export function Requests ({ requests, identities }) {
  const [filters, setFilters] = useState(readFilters())
  /** @param {string} k @param {string} v */
  const set = (k, v) => {
    const next = { ...filters, [k]: v }
    setFilters(next)
    const q = new URLSearchParams(location.search)
    for (const f of FILTERS) if (next[f]) q.set(f, next[f]); else q.delete(f)
    const s = q.toString()
    history.replaceState(null, '', s ? `?${s}` : location.pathname)
  }
  const labels = new Map(identities.map((i) => [i.id, i.label]))
  const shown = requests.filter((r) => (!filters.model || r.model === filters.model) &&
    (!filters.identity || r.identity === filters.identity || r.tried.includes(filters.identity)) &&
    (!filters.status || (filters.status === 'ok') === (r.status < 400)))
  const models = [...new Set(requests.map((r) => r.model).filter(Boolean))]
  return html`
    <section>
      <h2>Recent requests</h2>
      <div class="filters">
        <label>model <select data-testid="filter-model" value=${filters.model} onChange=${(/** @type {any} */ e) => set('model', e.target.value)}><option value="">all</option>${models.map((m) => html`<option value=${m}>${m}</option>`)}</select></label>
        <label>account <select data-testid="filter-identity" value=${filters.identity} onChange=${(/** @type {any} */ e) => set('identity', e.target.value)}><option value="">all</option>${identities.map((i) => html`<option value=${i.id}>${i.label}</option>`)}</select></label>
        <label>status <select data-testid="filter-status" value=${filters.status} onChange=${(/** @type {any} */ e) => set('status', e.target.value)}><option value="">all</option><option value="ok">ok</option><option value="error">errors</option></select></label>
        <span class="muted">${shown.length} shown · no prompt text is kept</span>
      </div>
      <table class="requests">
        <thead><tr><th>time</th><th>key</th><th>model</th><th>stream</th><th>status</th><th>TTFT</th><th>duration</th><th>tokens in/out</th><th>account</th><th>tried first</th><th>error</th></tr></thead>
        <tbody>${shown.map((r) => html`
          <tr key=${r.requestId} data-testid="requests-row" class=${r.status >= 400 ? 'bad' : ''}>
            <td>${clock(r.at)}</td><td>${r.key ?? '—'}</td><td>${r.model ?? r.route}</td><td>${r.stream == null ? "—" : r.stream ? "yes" : "no"}</td>
            <td class="num" data-testid="request-status">${r.status}</td><td class="num">${r.ttftMs ?? '—'}</td><td class="num">${r.durationMs} ms</td>
            <td class="num">${r.tokensIn ?? '—'} / ${r.tokensOut ?? '—'}</td>
            <td>${r.identity ? labels.get(r.identity) ?? r.identity : '—'}</td>
            <td>${r.tried.map((/** @type {string} */ id) => labels.get(id) ?? id).join(', ') || '—'}</td>
            <td>${r.error ? html`<code>${r.error}</code>` : ''}</td>
          </tr>`)}</tbody>
      </table>
    </section>`
}
