// @ts-check
import { useEffect, useState } from 'preact/hooks'
import { headers, readSse } from './api.js'
import { html } from './html.js'

/** Models from `/v1/models` (with the key the operator signed in with), shared with "how to connect". */
export async function loadModels () {
  const res = await fetch('../v1/models', { headers: headers() })
  if (!res.ok) return []
  const body = await res.json()
  return body.data.map((/** @type {any} */ m) => m.id)
}

/** @param {{ onUnauthorized: () => void }} p */
export function Playground ({ onUnauthorized }) {
  const [models, setModels] = useState(/** @type {string[]} */ ([]))
  const [model, setModel] = useState('')
  const [input, setInput] = useState('Say hello in five words.')
  const [stream, setStream] = useState(true)
  const [busy, setBusy] = useState(false)
  const [answer, setAnswer] = useState('')
  const [reasoning, setReasoning] = useState('')
  const [meta, setMeta] = useState(/** @type {{ ttft?: number, usage?: any, error?: string, ms?: number } | null} */ (null))

  useEffect(() => {
    loadModels().then((ms) => {
      setModels(ms)
      setModel((m) => m || ms[0] || '')
    }, () => {})
  }, [])

  /** @param {Event} e */
  const send = async (e) => {
    e.preventDefault()
    setBusy(true)
    setAnswer('')
    setReasoning('')
    setMeta(null)
    const started = performance.now()
    /** @type {number | undefined} */
    let ttft
    try {
      const res = await fetch('../v1/chat/completions', {
        method: 'POST',
        headers: headers({ 'content-type': 'application/json' }),
        body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: input }], ...(stream ? { stream_options: { include_usage: true } } : {}) }),
      })
      if (res.status === 401) return onUnauthorized()
      if (!res.ok) {
        const body = await res.json().catch(() => ({}))
        setMeta({ error: body?.error?.message ?? `HTTP ${res.status}` })
        return
      }
      if (!stream) {
        const body = await res.json()
        ttft = Math.round(performance.now() - started)
        const msg = body.choices?.[0]?.message ?? {}
        setReasoning(msg.reasoning_content ?? '')
        setAnswer(msg.content ?? '')
        setMeta({ ttft, usage: body.usage, ms: ttft })
        return
      }
      let text = ''
      let thought = ''
      /** @type {any} */
      let usage
      await readSse(res, (_event, data) => {
        if (data === '[DONE]') return
        const chunk = JSON.parse(data)
        if (chunk.usage) usage = chunk.usage
        const d = chunk.choices?.[0]?.delta ?? {}
        if ((d.content || d.reasoning_content) && ttft === undefined) ttft = Math.round(performance.now() - started)
        if (d.reasoning_content) setReasoning((thought += d.reasoning_content))
        if (d.content) setAnswer((text += d.content))
      })
      setMeta({ ttft, usage, ms: Math.round(performance.now() - started) })
    } catch (err) {
      setMeta({ error: /** @type {Error} */ (err).message })
    } finally {
      setBusy(false)
    }
  }
  return html`
    <section>
      <h2>Playground</h2>
      <form class="playground" onSubmit=${send}>
        <div class="row">
          <label>model <select data-testid="playground-model" value=${model} onChange=${(/** @type {any} */ e) => setModel(e.target.value)}>${models.map((m) => html`<option value=${m}>${m}</option>`)}</select></label>
          <label class="check"><input type="checkbox" data-testid="playground-stream" checked=${stream} onChange=${(/** @type {any} */ e) => setStream(e.target.checked)} /> stream</label>
          <span class="muted">Variants: <code>-thinking</code> shows reasoning apart, <code>-search</code> searches the web.</span>
        </div>
        <textarea data-testid="playground-input" rows="3" value=${input} onInput=${(/** @type {any} */ e) => setInput(e.target.value)}></textarea>
        <button data-testid="playground-send" type="submit" disabled=${busy || !model || input.trim() === ''}>${busy ? 'Running…' : 'Send'}</button>
      </form>
      ${reasoning && html`<details open class="reasoning"><summary>reasoning</summary><pre data-testid="playground-reasoning">${reasoning}</pre></details>`}
      <pre class="output" data-testid="playground-output">${answer}</pre>
      ${meta && html`<p class=${meta.error ? 'note bad' : 'note'} data-testid="playground-meta">${meta.error
        ? meta.error
        : `TTFT ${meta.ttft ?? '—'} ms · total ${meta.ms} ms · tokens ${meta.usage ? `${meta.usage.prompt_tokens} in / ${meta.usage.completion_tokens} out` : '—'}`}</p>`}
    </section>`
}
