/**
 * Abuse suite (operations issue): malformed and hostile input. Each request gets a 4xx in the OpenAI
 * envelope, nothing reaches the upstream, the process keeps serving and its memory comes back near
 * where it started.
 */
import { connect } from 'node:net'
import { Value } from '@sinclair/typebox/value'
import type { TSchema } from '@sinclair/typebox'
import t from 'tap'
import { buildServer, OptionsError } from '../../src/index.js'
import { ChatRequestSchema } from '../../src/schemas.js'
import { harness, startSim } from '../helpers/setup.js'

const KEY = 'sk-abuse-test-key'
const valid = () => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
type Envelope = { error: { message: string; type: string; param: string | null; code: string | null } }

/** The upstream calls a completion makes: none may happen for refused input. */
const upstreamWork = (log: Array<{ path: string }>) => log.filter((e) => e.path === '/api/v2/chats/new' || e.path === '/api/v2/chat/completions').length

async function send (url: string, raw: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Envelope }> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers }, body: raw })
  const text = await res.text()
  let body: Envelope
  try { body = JSON.parse(text) as Envelope } catch { throw new Error(`status ${res.status}, not JSON: ${text.slice(0, 200)}`) }
  return { status: res.status, body }
}

function isEnvelope (b: Envelope): boolean {
  return typeof b?.error?.message === 'string' && typeof b.error.type === 'string' && 'param' in b.error && 'code' in b.error
}

/** A value of a JSON type that `schema` refuses (a wrong type, not a wrong value). */
function wrongType (schema: TSchema): unknown {
  for (const v of [12345.5, 'a string', true, [1, 2], { unexpected: 1 }]) if (!Value.Check(schema, v)) return v
  return undefined
}

t.test('hostile bodies: 4xx in the envelope, nothing upstream, the process keeps serving', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: KEY } })
  const before = process.memoryUsage().heapUsed
  const cases: Array<[string, string | Buffer, number, string?]> = [
    ['truncated JSON', '{"model": "qwen3-max", "messages": [', 400, 'invalid_json'],
    ['not JSON at all', 'hello there', 400, 'invalid_json'],
    ['empty body', '', 400, 'invalid_json'],
    ['a JSON array', '[1, 2, 3]', 400],
    ['a JSON string', '"model"', 400],
    ['a JSON number', '42', 400],
    ['JSON null', 'null', 400],
    ['unknown role', JSON.stringify({ model: 'qwen3-max', messages: [{ role: 'wizard', content: 'hi' }] }), 400, 'invalid_value'],
    ['messages not an array', JSON.stringify({ model: 'qwen3-max', messages: 'hi' }), 400, 'invalid_type'],
    ['empty messages', JSON.stringify({ model: 'qwen3-max', messages: [] }), 400],
    ['5,000-level nested arrays', `{"model":"qwen3-max","messages":${'['.repeat(5000)}${']'.repeat(5000)}}`, 400],
    ['5,000-level nested objects', `{"model":"qwen3-max","messages":[{"role":"user","content":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}]}`, 400],
    ['10 MB of malformed JSON', Buffer.concat([Buffer.from('{"model":"qwen3-max","messages":[{"role":"user","content":"'), Buffer.alloc(10 * 1024 * 1024, 'x'), Buffer.from('"}]')]), 400, 'invalid_json'],
    ['a NUL-laden body', Buffer.alloc(4096, 0), 400, 'invalid_json'],
  ]
  for (const [name, raw, status, code] of cases) {
    const r = await send(h.url, raw)
    t.equal(r.status, status, `${name}: status`)
    t.ok(isEnvelope(r.body), `${name}: the OpenAI envelope`)
    if (code) t.equal(r.body.error.code, code, `${name}: code`)
  }
  // A wrong JSON type in every field the request schema knows.
  const props = (ChatRequestSchema as unknown as { properties: Record<string, TSchema> }).properties
  let fields = 0
  for (const [field, schema] of Object.entries(props)) {
    const v = wrongType(schema)
    if (v === undefined) continue
    fields++
    const r = await send(h.url, JSON.stringify({ ...valid(), [field]: v }))
    t.equal(r.status, 400, `${field}: a wrong type is a 400`)
    t.equal(r.body.error.code, 'invalid_type', `${field}: invalid_type`)
    t.match(r.body.error.param ?? '', new RegExp(`^${field}`), `${field}: param names the field`)
  }
  t.ok(fields >= 30, `every known field was tried (${fields})`)
  t.equal(upstreamWork(h.sim.log()), 0, 'nothing reached the upstream')
  // Still serving.
  const ok = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(valid()) })
  t.equal(ok.status, 200)
  await ok.arrayBuffer()
  // Memory comes back near the start (the 10 MB bodies are not kept).
  for (let i = 0; i < 20 && process.memoryUsage().heapUsed > before + 32 * 1024 * 1024; i++) {
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(process.memoryUsage().heapUsed < before + 32 * 1024 * 1024, `heap back near its start (${Math.round((process.memoryUsage().heapUsed - before) / 1024 / 1024)} MiB above)`)
})

t.test('1,000 requests without a key: 401 each, nothing upstream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: KEY } })
  const statuses = new Map<number, number>()
  let envelopes = 0
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: 50 }, async () => {
      const res = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(valid()) })
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      if (isEnvelope(await res.json() as Envelope)) envelopes++
    }))
  }
  t.same([...statuses], [[401, 1000]])
  t.equal(envelopes, 1000)
  t.equal(upstreamWork(h.sim.log()), 0)
})

t.test('CR/LF in a key header: the HTTP parser refuses it in the envelope; in a configured cookie or key: start-up refuses it', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: KEY } })
  const port = Number(new URL(h.url).port)
  const payload = JSON.stringify(valid())
  const raw = await new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    s.on('data', (d) => { got += String(d) })
    s.on('close', () => resolve(got))
    s.on('error', reject)
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\rinjected: 1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`)
  })
  t.match(raw, /^HTTP\/1\.1 400 /)
  t.match(raw, /"code":"invalid_http_request"/)
  t.equal(upstreamWork(h.sim.log()), 0)

  const sim = await startSim(t, { demoAccounts: 1 })
  for (const opts of [{ cookies: [`${sim.accounts[0]!.cookie}\r\nx-evil: 1`] }, { apiKey: 'sk-a\r\nx-evil: 1' }]) {
    const err = await buildServer({ qwenBaseUrl: sim.url, ...opts }, { logger: false }).then(async (app) => { await app.close(); return undefined }, (e: unknown) => e)
    t.type(err, OptionsError, `${Object.keys(opts)[0]}: refused at start-up`)
    t.notMatch(String((err as Error)?.message), /x-evil/, 'without echoing the secret')
  }
})
