/**
 * What the benchmark sends: the completion request to the gateway or to the floor, the simulator's
 * own cheap calls, and a thorough check of one response of each before any load.
 */
import { randomUUID } from 'node:crypto'
import { defaultAnswer, type Simulator } from '../src/simulator/index.js'
import { DEFAULT_WEB_VERSION, NEW_CHAT_PAGE, buildHeaders, newChatBody as upstreamNewChatBody } from '../src/upstream/protocol.js'
import type { Load } from './measure.js'

export const PROMPT = 'Hello'
export const MODEL = 'qwen3-max'

/** A load with a one-off thorough check of a full response (throws on failure). */
export interface CheckedLoad extends Load {
  sanity: () => Promise<void>
}

export const chatBody = (stream: boolean): string =>
  JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], ...(stream ? { stream: true } : {}) })

const JSON_HEADERS = { 'content-type': 'application/json' }

export async function expectOk (res: Response, what: string): Promise<string> {
  const text = await res.text()
  if (res.status < 200 || res.status > 299) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`)
  return text
}

/** The `data:` payloads of an SSE body. */
const dataLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))

/** `POST /v1/chat/completions` on the gateway, checked as an OpenAI answer. */
export function gatewayLoad (baseUrl: string, stream: boolean): CheckedLoad {
  const url = `${baseUrl}/v1/chat/completions`
  const body = chatBody(stream)
  const name = stream ? 'gateway stream' : 'gateway non-stream'
  const expected = defaultAnswer(PROMPT)
  return {
    name,
    what: `POST /v1/chat/completions ${body}`,
    request: { url, method: 'POST', headers: JSON_HEADERS, body },
    verifyBody: stream
      ? (b) => b.endsWith('data: [DONE]\n\n') && b.includes('"finish_reason":"stop"') && !b.includes('"error"')
      : (b) => b.includes('"object":"chat.completion"') && b.includes('"finish_reason":"stop"'),
    async sanity () {
      const res = await fetch(url, { method: 'POST', headers: JSON_HEADERS, body })
      const text = await expectOk(res, name)
      if (!stream) {
        const r = JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown }; finish_reason?: unknown }> }
        const c = r.choices?.[0]
        if (c?.message?.content !== expected || c.finish_reason !== 'stop') throw new Error(`${name}: unexpected body ${text.slice(0, 300)}`)
        return
      }
      if (!res.headers.get('content-type')?.startsWith('text/event-stream')) throw new Error(`${name}: content-type ${res.headers.get('content-type')}`)
      const data = dataLines(text)
      if (data.at(-1) !== '[DONE]') throw new Error(`${name}: stream does not end with [DONE]`)
      let content = ''
      for (const d of data.slice(0, -1)) content += (JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? ''
      if (content !== expected) throw new Error(`${name}: streamed content ${JSON.stringify(content)} != ${JSON.stringify(expected)}`)
    },
  }
}

/** The same request to the floor, which relays the upstream's frames as they are. */
export function floorLoad (baseUrl: string, stream: boolean): CheckedLoad {
  const url = `${baseUrl}/v1/chat/completions`
  const body = chatBody(stream)
  const name = stream ? 'floor stream' : 'floor non-stream'
  const expected = defaultAnswer(PROMPT)
  return {
    name,
    what: `POST /v1/chat/completions ${body} (relayed upstream frames)`,
    request: { url, method: 'POST', headers: JSON_HEADERS, body },
    verifyBody: (b) => b.includes('"phase":"answer","status":"finished"') && !b.includes('"error"'),
    async sanity () {
      const text = await expectOk(await fetch(url, { method: 'POST', headers: JSON_HEADERS, body }), name)
      let content = ''
      for (const d of dataLines(text)) {
        const delta = (JSON.parse(d) as { choices?: Array<{ delta?: { content?: string; phase?: string } }> }).choices?.[0]?.delta
        if (delta?.phase === 'answer') content += delta.content ?? ''
      }
      if (content !== expected) throw new Error(`${name}: relayed content ${JSON.stringify(content)} != ${JSON.stringify(expected)}`)
    },
  }
}

/** The simulator's own cheap calls (its cost per request, for scale). */
export function simulatorLoads (sim: Simulator, token: string): CheckedLoad[] {
  const bearer = { authorization: `Bearer ${token}` }
  const now = Date.now()
  const newChatBody = JSON.stringify(upstreamNewChatBody(MODEL, 't2t', now))
  // The 2026 site rules want the web app's headers on chats/new (one request id for the whole run).
  const newChatHeaders = buildHeaders({ token }, { requestId: randomUUID(), json: true, webVersion: DEFAULT_WEB_VERSION, page: NEW_CHAT_PAGE, now })
  return [
    {
      name: 'simulator GET /api/models',
      what: 'GET /api/models with Authorization: Bearer <token>',
      request: { url: `${sim.url}/api/models`, method: 'GET', headers: bearer },
      verifyBody: (b) => b.startsWith('{"data":[{'),
      async sanity () {
        const text = await expectOk(await fetch(`${sim.url}/api/models`, { headers: bearer }), this.name)
        const r = JSON.parse(text) as { data?: Array<{ id?: unknown }> }
        if (!r.data?.some((m) => m.id === MODEL)) throw new Error(`${this.name}: ${MODEL} not listed`)
      },
    },
    {
      name: 'simulator POST /api/v2/chats/new',
      what: `POST /api/v2/chats/new ${newChatBody} with the web app's headers (buildHeaders) and Authorization: Bearer <token>`,
      request: { url: `${sim.url}/api/v2/chats/new`, method: 'POST', headers: newChatHeaders, body: newChatBody },
      verifyBody: (b) => b.includes('"success":true'),
      async sanity () {
        const text = await expectOk(await fetch(`${sim.url}/api/v2/chats/new`, { method: 'POST', headers: newChatHeaders, body: newChatBody }), this.name)
        const r = JSON.parse(text) as { success?: unknown; data?: { id?: unknown } }
        if (r.success !== true || typeof r.data?.id !== 'string') throw new Error(`${this.name}: unexpected body ${text.slice(0, 300)}`)
      },
    },
  ]
}
