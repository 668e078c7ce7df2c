// @ts-check
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, live, session, Unauthorized } from './api.js'
import { duration } from './format.js'
import { html } from './html.js'
import { Identities, Accounts } from './identities.js'
import { Traffic, Requests } from './traffic.js'
import { Playground } from './playground.js'
import { Connect } from './connect.js'

const STATES = ['healthy', 'degraded', 'down', 'cooldown', 'disabled', 'no_token']

/** @param {{ onLogin: () => void, error: string }} p */
function Login ({ onLogin, error }) {
  const [key, setKey] = useState('')
  const [problem, setProblem] = useState(error)
  const [busy, setBusy] = useState(false)
  /** @param {Event} e */
  const submit = async (e) => {
    e.preventDefault()
    setBusy(true)
    if (key) session.set(key)
    else session.clear()
    try {
      await api('api/state')
      onLogin()
    } catch (err) {
      session.clear()
      setProblem(err instanceof Unauthorized ? 'Wrong admin key' : String(/** @type {Error} */ (err).message))
    } finally {
      setBusy(false)
    }
  }
  return html`
    <main class="login">
      <form onSubmit=${submit}>
        <h1>qwen-gateway</h1>
        <p>The admin key (<code>ADMIN_API_KEY</code>, else the first <code>API_KEY</code> entry). Without any key configured, leave it empty: the dashboard then answers only on this machine.</p>
        <label>Admin key <input data-testid="login-key" type="password" autocomplete="current-password" value=${key} onInput=${(/** @type {any} */ e) => setKey(e.target.value)} /></label>
        <button data-testid="login-submit" type="submit" disabled=${busy}>Sign in</button>
        ${problem && html`<p role="alert" class="alert">${problem}</p>`}
      </form>
    </main>`
}

/** @param {{ state: any, live: boolean, now: number, onLogout: () => void }} p */
function Header ({ state, live: isLive, now, onLogout }) {
  const c = state.counts
  return html`
    <header>
      <h1>qwen-gateway <small>v${state.version}</small></h1>
      <span class="meta">up ${duration(now - state.startedAt)}</span>
      ${state.replicaId && html`<span class="meta">replica <b>${state.replicaId}</b></span>`}
      <span class=${`meta store-${state.storeMode}`}>store <b>${state.storeMode}</b></span>
      <span class=${isLive ? 'live on' : 'live off'} data-testid="live">${isLive ? '● live' : '○ reconnecting…'}</span>
      <span class="counts" data-testid="pool-counts">
        ${STATES.map((s) => html`<span class=${`badge ${s}`} data-count=${s}>${s.replace('_', ' ')} ${c[s]}</span>`)}
        <span class="total">${c.total} accounts</span>
      </span>
      <button class="link" onClick=${onLogout}>sign out</button>
    </header>
    ${state.storeMode === 'degraded-local' && html`<p class="banner">The shared store is unreachable: this replica runs on its own state until it is back.</p>`}`
}

function Dashboard ({ onLogout }) {
  const [state, setState] = useState(/** @type {any} */ (null))
  const [requests, setRequests] = useState(/** @type {any[]} */ ([]))
  const [isLive, setLive] = useState(false)
  const [offset, setOffset] = useState(0)
  const [now, setNow] = useState(Date.now())

  useEffect(() => {
    /** @param {any} s */
    const take = (s) => {
      setOffset(s.serverTime - Date.now())
      setState(s)
    }
    api('api/state').then(take, (err) => { if (err instanceof Unauthorized) onLogout() })
    api('api/requests').then((r) => setRequests(r.requests), (err) => { if (err instanceof Unauthorized) onLogout() })
    const stop = live({
      onStatus: setLive,
      onUnauthorized: onLogout,
      onEvent: (event, data) => {
        if (event === 'state') take(JSON.parse(data))
        else if (event === 'request') {
          const r = JSON.parse(data)
          setRequests((list) => (list.some((x) => x.requestId === r.requestId) ? list : [r, ...list].slice(0, 200)))
        }
      },
    })
    const tick = setInterval(() => setNow(Date.now()), 1000)
    return () => {
      stop()
      clearInterval(tick)
    }
  }, [])

  if (!state) return html`<p class="loading">connecting…</p>`
  const serverNow = now + offset
  /** @param {any} s */
  const apply = (s) => setState((old) => {
    if (!old) return old
    const identities = old.identities.map((/** @type {any} */ i) => (i.id === s.id ? s : i))
    /** @type {Record<string, number>} */
    const counts = { total: identities.length }
    for (const k of STATES) counts[k] = identities.filter((/** @type {any} */ i) => i.status === k).length
    return { ...old, identities, counts }
  })
  return html`
    <${Header} state=${state} live=${isLive} now=${serverNow} onLogout=${onLogout} />
    <main>
      <${Identities} state=${state} requests=${requests} now=${serverNow} onIdentity=${apply} onUnauthorized=${onLogout} />
      <${Accounts} state=${state} onUnauthorized=${onLogout} />
      <${Traffic} requests=${requests} now=${serverNow} />
      <${Requests} requests=${requests} identities=${state.identities} />
      <${Playground} onUnauthorized=${onLogout} />
      <${Connect} />
    </main>`
}

function App () {
  const [signedIn, setSignedIn] = useState(session.key !== null)
  const [error, setError] = useState('')
  const logout = () => {
    session.clear()
    setError('Sign in again')
    setSignedIn(false)
  }
  return signedIn ? html`<${Dashboard} onLogout=${logout} />` : html`<${Login} onLogin=${() => setSignedIn(true)} error=${error} />`
}

const root = /** @type {HTMLElement} */ (document.getElementById('app'))
// Preact keeps foreign children: clear the static placeholder first.
root.textContent = ''
render(html`<${App} />`, root)
