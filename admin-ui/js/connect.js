// @ts-check
import { useEffect, useState } from 'preact/hooks'
import { gatewayBase } from './api.js'
import { html } from './html.js'
import { loadModels } from './playground.js'

/** @param {{ text: string }} p */
function Copy ({ text }) {
  const [done, setDone] = useState(false)
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text)
      setDone(true)
      setTimeout(() => setDone(false), 1500)
    } catch {
      // No clipboard (insecure context, denied): select the text by hand.
    }
  }
  return html`<button class="small copy" type="button" onClick=${copy}>${done ? 'copied' : 'copy'}</button>`
}

/** @param {{ title: string, code: string }} p */
function Snippet ({ title, code }) {
  return html`<div class="snippet"><div class="snippet-head"><span>${title}</span><${Copy} text=${code} /></div><pre>${code}</pre></div>`
}

/** Base URL, model ids and snippets; the key is a placeholder, never the real one. */
export function Connect () {
  const [models, setModels] = useState(/** @type {string[]} */ ([]))
  useEffect(() => { loadModels().then(setModels, () => {}) }, [])
  const base = `${gatewayBase()}/v1`
  const model = models[0] ?? 'qwen3-max'
  const curl = `curl ${base}/chat/completions \\
  -H "Authorization: Bearer YOUR_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "stream": true, "messages": [{"role": "user", "content": "Hello"}]}'`
  const python = `from openai import OpenAI

client = OpenAI(base_url="${base}", api_key="YOUR_API_KEY")
r = client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "Hello"}])
print(r.choices[0].message.content)`
  const node = `import OpenAI from 'openai'

const client = new OpenAI({ baseURL: '${base}', apiKey: 'YOUR_API_KEY' })
const r = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: 'Hello' }] })
console.log(r.choices[0].message.content)`
  return html`
    <section>
      <h2>How to connect</h2>
      <p>Base URL <code data-testid="base-url">${base}</code> <${Copy} text=${base} /> · key: an <code>API_KEY</code> entry (shown here as <code>YOUR_API_KEY</code>).
        Apps that speak the OpenAI API (Open WebUI, LobeChat, Cherry Studio, Continue, …) take the same base URL and key; Anthropic clients use <code>${gatewayBase()}</code> with <code>/v1/messages</code>.</p>
      <p class="models">${models.map((m) => html`<code>${m}</code> `)}</p>
      <div class="snippets">
        <${Snippet} title="curl" code=${curl} />
        <${Snippet} title="Python (openai)" code=${python} />
        <${Snippet} title="Node (openai)" code=${node} />
      </div>
    </section>`
}
