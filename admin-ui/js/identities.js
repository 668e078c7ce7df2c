// @ts-check
import { useState } from 'preact/hooks'
import { api, Unauthorized } from './api.js'
import { duration } from './format.js'
import { html } from './html.js'

const WINDOW_MS = 5 * 60_000

/**
 * One action button: POSTs, shows the answer next to the table.
 * @param {{ label: string, testid: string, run: () => Promise<void>, danger?: boolean }} p
 */
function Action ({ label, testid, run, danger }) {
  const [busy, setBusy] = useState(false)
  return html`<button class=${danger ? 'small danger' : 'small'} data-testid=${testid} disabled=${busy}
    onClick=${async () => { setBusy(true); try { await run() } finally { setBusy(false) } }}>${label}</button>`
}

/** @param {{ state: any, requests: any[], now: number, onIdentity: (i: any) => void, onUnauthorized: () => void }} p */
export function Identities ({ state, requests, now, onIdentity, onUnauthorized }) {
  const [note, setNote] = useState(/** @type {{ ok: boolean, text: string } | null} */ (null))
  const recent = requests.filter((r) => r.at > now - WINDOW_MS)
  /** @param {string} id */
  const tally = (id) => ({
    ok: recent.filter((r) => r.identity === id && r.status < 400).length,
    failed: recent.filter((r) => (r.identity === id && r.status >= 400) || r.tried.includes(id)).length,
  })
  /** @param {any} i @param {string} action */
  const act = async (i, action) => {
    try {
      const r = await api(`api/identities/${encodeURIComponent(i.id)}/${action}`, { method: 'POST' })
      onIdentity(r.identity)
      setNote({ ok: r.ok, text: `${i.label}: ${r.message}${r.latencyMs !== undefined ? ` (${r.latencyMs} ms)` : ''}` })
    } catch (err) {
      if (err instanceof Unauthorized) return onUnauthorized()
      setNote({ ok: false, text: `${i.label}: ${/** @type {Error} */ (err).message}` })
    }
  }
  /** @param {any} i */
  const remove = async (i) => {
    try {
      await api(`api/accounts/${encodeURIComponent(i.id)}`, { method: 'DELETE' })
      setNote({ ok: true, text: `${i.label}: removed` })
    } catch (err) {
      if (err instanceof Unauthorized) return onUnauthorized()
      setNote({ ok: false, text: `${i.label}: ${/** @type {Error} */ (err).message}` })
    }
  }
  return html`
    <section>
      <h2>Accounts in the pool</h2>
      ${state.identities.length === 0 && html`<p class="muted">No upstream account is configured: add one below, or set <code>COOKIE</code>.</p>`}
      <table class="pool" data-testid="pool">
        <thead><tr><th>account</th><th>state</th><th>cooldown</th><th>token expires</th><th>in flight</th><th>5 min ok / failed</th><th>last error</th><th>actions</th></tr></thead>
        <tbody>
          ${state.identities.map((/** @type {any} */ i) => {
            const t = tally(i.id)
            return html`
            <tr key=${i.id} data-testid="identity-row" data-identity-id=${i.id} data-state=${i.status}>
              <td><span class="label">${i.label}</span>${i.proxy ? html` <span class="tag">proxy</span>` : null}</td>
              <td><span class=${`badge ${i.status}`} data-testid="state">${i.status.replace('_', ' ')}</span>${i.blockedBy && i.blockedBy !== i.status ? html` <small>${i.blockedBy.replace('_', ' ')}</small>` : null}</td>
              <td class="num" data-testid="cooldown">${i.cooldownUntil ? duration(i.cooldownUntil - now) : '—'}</td>
              <td class="num">${i.tokenExpiresAt ? duration(i.tokenExpiresAt - now) : 'no token'}</td>
              <td class="num">${i.inFlight}</td>
              <td class="num">${t.ok} / ${t.failed}</td>
              <td class="error">${i.lastError ? html`<span title=${i.lastError}>${i.lastError.slice(0, 60)}</span> <small>${duration(now - i.lastErrorAt)} ago</small>` : '—'}</td>
              <td class="actions">
                <${Action} label="refresh" testid="identity-refresh" run=${() => act(i, 'refresh')} />
                <${Action} label="test" testid="identity-test" run=${() => act(i, 'test')} />
                <${Action} label="reset" testid="identity-reset" run=${() => act(i, 'reset')} />
                <${Action} label=${i.status === 'disabled' ? 'enable' : 'disable'} testid="identity-disable" run=${() => act(i, i.status === 'disabled' ? 'enable' : 'disable')} />
                ${i.runtime && html`<${Action} label="remove" testid="account-remove" danger run=${() => remove(i)} />`}
              </td>
            </tr>`
          })}
        </tbody>
      </table>
      ${note && html`<p class=${note.ok ? 'note ok' : 'note bad'} role="status">${note.text}</p>`}
    </section>`
}

/** @param {{ state: any, onUnauthorized: () => void }} p */
export function Accounts ({ state, onUnauthorized }) {
  const [text, setText] = useState('')
  const [results, setResults] = useState(/** @type {any[]} */ ([]))
  const [problem, setProblem] = useState('')
  const [busy, setBusy] = useState(false)
  /** @param {Event} e */
  const add = async (e) => {
    e.preventDefault()
    setBusy(true)
    setProblem('')
    try {
      const r = await api('api/accounts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ accounts: text }) })
      setResults(r.results)
      setText('')
    } catch (err) {
      if (err instanceof Unauthorized) return onUnauthorized()
      setProblem(/** @type {Error} */ (err).message)
    } finally {
      setBusy(false)
    }
  }
  return html`
    <section>
      <h2>Add accounts</h2>
      <p class="muted">One per line: a browser cookie from chat.qwen.ai, or <code>email:password</code>. Configured accounts (env, files) are read-only here; accounts added here can be removed from the table above.
        ${state.accountsPersistent
          ? ' They are stored sealed with STATE_SECRET in the shared store and come back after a restart.'
          : html` <b>Accounts added here live in memory only, until the gateway restarts (they are kept across restarts only in the shared store: REDIS_URL with STATE_SECRET).</b>`}</p>
      <form onSubmit=${add} class="add">
        <textarea data-testid="account-add-input" rows="3" spellcheck="false" autocomplete="off" placeholder="token=…; cna=…\nname@example.com:password" value=${text} onInput=${(/** @type {any} */ e) => setText(e.target.value)}></textarea>
        <button data-testid="account-add-submit" type="submit" disabled=${busy || text.trim() === ''}>Add</button>
      </form>
      ${problem && html`<p class="note bad" role="alert">${problem}</p>`}
      ${results.length > 0 && html`<ul class="results">${results.map((r) => html`<li class=${r.ok ? 'ok' : 'bad'}>line ${r.line}: ${r.ok ? `added ${r.label}` : ''}${r.error ? ` ${r.error}` : ''}</li>`)}</ul>`}
    </section>`
}
