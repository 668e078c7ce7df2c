/**
 * The body-size guard: a history whose upstream body would exceed UPSTREAM_BODY_LIMIT_BYTES goes
 * as an uploaded text file with a short instruction (gateway + simulator, through the upload
 * plugin); when that cannot be done, 400 `context_length_exceeded` (the guard alone, with a
 * scripted client and uploader).
 */
import t from 'tap'
import { harness, postJson, sseData } from './helpers/setup.js'
import { fitBody, HISTORY_FILENAME, HISTORY_NOTE, historyAttachment } from '../src/turn/body-guard.js'
import type { CredentialLease } from '../src/turn/lease.js'
import type { TurnSpec } from '../src/upstream/protocol.js'
import { InvalidRequestError } from '../src/errors.js'

const completions = (log: Array<{ path: string; body?: unknown }>): any[] => log.filter((e) => e.path === '/api/v2/chat/completions').map((e) => e.body)

t.test('a history over the body limit goes as an uploaded text file with a short message; the answer works', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { upstreamBodyLimitBytes: 20_000 } })
  const long = 'The quick brown fox. '.repeat(1500)
  const messages = [
    { role: 'system', content: 'Answer briefly.' },
    { role: 'user', content: long },
    { role: 'assistant', content: 'Noted.' },
    { role: 'user', content: 'What animal was it?' },
  ]
  const res = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages })
  t.equal(res.status, 200)
  const j = await res.json() as any
  t.ok(j.choices[0].message.content.length > 0, 'an answer')
  const [sent] = completions(h.sim.log())
  const msg = sent.messages[0]
  t.equal(msg.content, HISTORY_NOTE, 'the message is the short instruction')
  t.equal(msg.files.length, 1)
  t.match(msg.files[0], { type: 'file', name: HISTORY_FILENAME })
  t.ok(Buffer.byteLength(JSON.stringify(sent)) < 20_000, 'the body now fits')
  const put = h.sim.log().filter((e) => (e as { method: string }).method === 'PUT')
  t.equal(put.length, 1, 'one object uploaded')

  // Streamed too; a body that fits is sent as is.
  const s = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages, stream: true })
  t.equal(sseData(await s.text()).at(-1), '[DONE]')
  const small = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(small.status, 200)
  await small.json()
  const last = completions(h.sim.log()).at(-1)
  t.equal(last.messages[0].files.length, 0)
  t.match(last.messages[0].content, /hi/)
})

const lease = { identityId: 'i', label: 'i', cred: { token: 't' }, proxyUrl: undefined } as unknown as CredentialLease
const turn = (content: string, files: unknown[] = []): TurnSpec => ({ chatId: 'c', model: 'm', chatType: 't2t', thinking: false, content, parentId: null, files })
/** A client whose body size is the content's length plus the files' JSON. */
const client = (limit: number) => ({ bodyLimitBytes: limit, completionBodyBytes: (x: TurnSpec) => x.content.length + JSON.stringify(x.files ?? []).length })
const o = { signal: new AbortController().signal, requestId: 'r' }

t.test('fitBody: unchanged under the limit; 400 context_length_exceeded when uploads are unavailable or the rest is still too large', async (t) => {
  const small = turn('hello')
  t.equal(await fitBody(small, { client: client(1000) }, lease, o), small, 'the same turn')

  const err = await fitBody(turn('x'.repeat(2000)), { client: client(1000) }, lease, o).catch((e: unknown) => e)
  t.ok(err instanceof InvalidRequestError)
  t.match(err, { code: 'context_length_exceeded', param: 'messages', message: /2002 bytes, above the limit of 1000 .*needs uploads/ })

  const uploaded: string[] = []
  const uploader = {
    filesFor: async (_l: CredentialLease, list: readonly { bytes: Buffer; filename: string; mime: string; kind: string }[]) => {
      for (const a of list) uploaded.push(`${a.kind} ${a.mime} ${a.filename} ${a.bytes.toString('utf8').length}`)
      return [{ type: 'file', id: 'f1' }]
    },
  }
  const moved = await fitBody(turn('y'.repeat(2000), [{ type: 'image', id: 'img' }]), { client: client(1000), uploader }, lease, o)
  t.same(uploaded, [`file text/plain ${HISTORY_FILENAME} 2000`])
  t.equal(moved.content, HISTORY_NOTE)
  t.same(moved.files, [{ type: 'image', id: 'img' }, { type: 'file', id: 'f1' }], 'the request\'s own files stay first')

  const huge = [{ type: 'image', id: 'z'.repeat(1000) }]
  const still = await fitBody(turn('y'.repeat(2000), huge), { client: client(1000), uploader }, lease, o).catch((e: unknown) => e)
  t.match(still, { code: 'context_length_exceeded', message: /Even with the history sent as a file/ })
})

t.test('historyAttachment: a text/plain file of the prompt with its hash', async (t) => {
  const a = historyAttachment('héllo')
  t.match(a, { kind: 'file', mime: 'text/plain', filename: HISTORY_FILENAME, param: 'messages' })
  t.equal(a.bytes.toString('utf8'), 'héllo')
  t.match(a.sha256, /^[0-9a-f]{64}$/)
})
