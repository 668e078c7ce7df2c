/**
 * The upload path end to end against the simulator over real sockets: STS grant, signed PUT, the
 * file object in the completion's `files[]`, the per-identity dedup cache, failover, documents and
 * the simulator's refusals.
 */
import t from 'tap'
import { Agent } from 'undici'
import { newRecord } from '../src/completion.js'
import { UpstreamError } from '../src/errors.js'
import type { Attachment } from '../src/media/attachment.js'
import { encodePng, pngSize } from '../src/media/png.js'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import { UpstreamClient } from '../src/upstream/client.js'
import type { Credentials } from '../src/upstream/protocol.js'
import { attachment, JPEG_1PX } from './helpers/media.js'
import { harness, type Harness } from './helpers/setup.js'

const dispatcher = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 })
t.teardown(() => dispatcher.close())

async function clientFor (t: { teardown (fn: () => unknown): void }, site: '2025' | '2026' = '2026'): Promise<{ sim: Simulator; client: UpstreamClient; cred: Credentials; other: Credentials }> {
  const sim = await startSimulator({ demoAccounts: 2, site })
  t.teardown(() => sim.close())
  const client = new UpstreamClient({ baseUrl: sim.url, dispatcher, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxBufferBytes: 1024 * 1024 })
  const { token } = await client.fetchToken(sim.accounts[0]!.cookie)
  const other = (await client.fetchToken(sim.accounts[1]!.cookie)).token
  return { sim, client, cred: { token }, other: { token: other } }
}

/** Run one completion through the production runner with attachments (the faces that build them come with the media-input work). */
async function complete (h: Harness, attachments: Attachment[], o: { model?: string; signal?: AbortSignal } = {}) {
  const model = await h.app.qwenModels.resolve(o.model ?? 'qwen3-max')
  const chat = { prompt: 'What is in the picture?', stream: false, includeUsage: false, stop: [], maxTokens: undefined, thinkingOverride: undefined, attachments }
  const rec = newRecord()
  const answer = await h.app.qwenCompletions.runner.collect({
    caller: { kind: 'pool' }, model, chat, thinking: false, requestId: 'req_upload', signal: o.signal ?? new AbortController().signal,
  }, rec)
  return { answer, rec }
}

const stsCalls = (sim: Simulator) => sim.log().filter((e) => e.path.endsWith('/files/getstsToken'))
const puts = (sim: Simulator) => sim.log().filter((e) => e.method === 'PUT')
const completions = (sim: Simulator) => sim.log().filter((e) => e.path === '/api/v2/chat/completions')
const filesOf = (e: { body: unknown }) => (e.body as { messages: Array<{ files: Array<Record<string, unknown>> }> }).messages[0]!.files

t.test('client: STS grant (wrapped), signed PUT of real PNG bytes, the object served back', async (t) => {
  const { sim, client, cred } = await clientFor(t)
  const png = encodePng(3, 2)
  const grant = await client.getSts(cred, { filename: 'a.png', size: png.length, mime: 'image/png' }, { requestId: 'req-sts' })
  t.match(grant, { accessKeyId: /^STS\./, securityToken: /^CAIS/, bucket: 'qwen-webui-sim', endpoint: sim.url, filePath: new RegExp(`^${sim.accounts[0]!.id}/.+_a\\.png$`) })
  const sts = stsCalls(sim)[0]!
  t.equal(sts.path, '/api/v2/files/getstsToken', 'the current path first')
  t.match(sts.body, { filename: 'a.png', filesize: png.length, filetype: 'image', file_name: 'a.png', file_size: png.length, file_type: 'image' }, 'both spellings')
  t.equal(sts.headers['x-request-id'], 'req-sts')
  await client.putObject(grant, png, 'image/png')
  const put = puts(sim)[0]!
  t.equal(put.path, `/qwen-webui-sim/${grant.filePath}`, 'path-style on a non-aliyuncs endpoint')
  t.match(put.headers, { authorization: 'OSS STS.', 'x-oss-security-token': `${grant.securityToken.slice(0, 12)}…`, 'content-type': 'image/png', date: /GMT$/ }, 'V1 signature header, the STS token (masked in the log)')
  t.equal(put.status, 200)
  const back = Buffer.from(await (await fetch(grant.fileUrl)).arrayBuffer())
  t.ok(back.equals(png), 'the object store serves the bytes back')
  t.same(pngSize(back), { width: 3, height: 2 })
  t.equal((await fetch(grant.fileUrl.replace(/key=\w+/, 'key=wrong'))).status, 403, 'not without the URL key')
})

t.test('client: the simulator refuses bad signatures, tokens, types and sizes (OSS XML errors)', async (t) => {
  const { sim, client, cred } = await clientFor(t)
  const png = encodePng(1, 1)
  const spec = { filename: 'p.png', size: png.length, mime: 'image/png' }
  const cases: Array<[string, (g: Awaited<ReturnType<UpstreamClient['getSts']>>) => Promise<void>, RegExp]> = [
    ['signature', (g) => client.putObject({ ...g, accessKeySecret: 'not-the-secret' }, png, 'image/png'), /SignatureDoesNotMatch/],
    ['security token', (g) => client.putObject({ ...g, securityToken: 'CAISforged' }, png, 'image/png'), /InvalidSecurityToken/],
    ['access key', (g) => client.putObject({ ...g, accessKeyId: 'STS.other' }, png, 'image/png'), /InvalidAccessKeyId/],
    ['content type', (g) => client.putObject(g, png, 'video/mp4'), /InvalidArgument: Content-Type video\/mp4/],
    ['size', (g) => client.putObject(g, Buffer.concat([png, Buffer.from('x')]), 'image/png'), /InvalidArgument/],
    ['object', (g) => client.putObject({ ...g, filePath: `${g.filePath}.other` }, png, 'image/png'), /AccessDenied/],
  ]
  for (const [what, put, re] of cases) {
    const g = await client.getSts(cred, spec)
    const err = await put(g).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof UpstreamError && err.kind === 'upstream_error', `${what}: an upstream error`)
    t.match((err as Error).message, re, what)
  }
  t.ok(puts(sim).every((e) => e.status >= 400), 'nothing was stored')
})

t.test('client: STS refusals; the older flat path when the current one is missing', async (t) => {
  const { sim, client, cred } = await clientFor(t)
  await t.rejects(client.getSts(cred, { filename: 'x.png', size: 0, mime: 'image/png' }), { name: 'UpstreamError', kind: 'bad_request' }, 'a zero size is refused')
  await t.rejects(client.getSts({ token: 'nope' }, { filename: 'x.png', size: 1, mime: 'image/png' }), { name: 'UpstreamError', kind: 'auth_failed' })
  sim.queue(sim.accounts[0]!.email, { endpoint: 'sts', fail: 'rate_limited', rateLimitHours: 1 })
  await t.rejects(client.getSts(cred, { filename: 'x.png', size: 1, mime: 'image/png' }), { name: 'UpstreamError', kind: 'rate_limited' }, 'scripted STS failures')
  // A base URL under which only the v1 path exists (a path prefix the simulator does not know for v2).
  const { createServer } = await import('node:http')
  const flat = { access_key_id: 'STS.a', access_key_secret: 's', security_token: 'CAIS', bucketname: 'b', region: 'oss-r', file_path: 'u/f.png', file_url: 'https://x/u/f.png', file_id: 'f' }
  const srv = createServer((req, res) => {
    if (req.url === '/api/v1/files/getstsToken') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(flat))
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}')
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => srv.close(resolve)))
  const port = (srv.address() as { port: number }).port
  const old = new UpstreamClient({ baseUrl: `http://127.0.0.1:${port}`, dispatcher, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxBufferBytes: 1024 * 1024 })
  t.match(await old.getSts(cred, { filename: 'f.png', size: 1, mime: 'image/png' }), { accessKeyId: 'STS.a', filePath: 'u/f.png', endpoint: undefined })
  t.equal(await old.parseFile(cred, 'f'), false, 'no parse endpoint: the document is attached as is')
})

t.test('client: a file of another account, or one never uploaded, is refused in a completion', async (t) => {
  const { sim, client, cred, other } = await clientFor(t)
  const png = encodePng(2, 2)
  const g = await client.getSts(cred, { filename: 'mine.png', size: png.length, mime: 'image/png' })
  await client.putObject(g, png, 'image/png')
  const file = { type: 'image', url: g.fileUrl, name: 'mine.png' }
  const turn = async (c: Credentials, files: unknown[]) => {
    const chatId = await client.createChat(c, 'qwen3-max', 't2t')
    return client.openCompletion(c, { chatId, model: 'qwen3-max', chatType: 't2t', thinking: false, content: 'hi', parentId: null, files })
  }
  const ok = await turn(cred, [file])
  ok.stream.close()
  await t.rejects(turn(other, [file]), { kind: 'bad_request', message: /belongs to another user/ })
  await t.rejects(turn(cred, [{ ...file, url: `${sim.url}/qwen-webui-sim/nope.png?key=x` }]), { message: /never uploaded/ })
  await t.rejects(turn(cred, [{ ...file, url: 'https://example.com/cat.png' }]), { message: /never uploaded/ })
  await t.rejects(turn(cred, [{ ...file, type: 'video' }]), { message: /does not match/ })
  await t.rejects(turn(cred, ['not an object']), { message: /needs type and url/ })
  const chatId = await client.createChat(cred, 'qwen3-coder-plus', 't2t')
  await t.rejects(client.openCompletion(cred, { chatId, model: 'qwen3-coder-plus', chatType: 't2t', thinking: false, content: 'hi', parentId: null, files: [file] }),
    { message: /does not support image input/ }, 'a model without vision refuses images (the gateway falls back before)')
})

t.test('gateway: a PNG through the runner, then the same bytes again: no STS, no PUT', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const png = attachment(encodePng(4, 4), 'image/png')
  h.sim.clearLog()
  const first = await complete(h, [png])
  t.match(first.answer.content, /^I see 1 attached file\(s\) \(image\)/)
  t.equal(stsCalls(h.sim).length, 1)
  t.equal(puts(h.sim).length, 1)
  const f = filesOf(completions(h.sim)[0]!)
  t.equal(f.length, 1)
  t.match(f[0], { type: 'image', file_class: 'vision', showType: 'image', status: 'uploaded', file_type: 'image/png', size: png.bytes.length, name: 'upload.png' })
  t.match(f[0]!.url, new RegExp(`^${h.sim.url}/qwen-webui-sim/`))
  const again = await complete(h, [png])
  t.match(again.answer.content, /^I see 1 attached file/)
  t.equal(stsCalls(h.sim).length, 1, 'the second request asked for no STS grant')
  t.equal(puts(h.sim).length, 1, 'and uploaded nothing')
  t.equal(filesOf(completions(h.sim)[1]!)[0]!.url, f[0]!.url, 'the same upstream file')
  // JPEG and PNG in one request: two uploads, in order.
  const jpeg = attachment(JPEG_1PX, 'image/jpeg')
  await complete(h, [jpeg, png])
  t.equal(puts(h.sim).length, 2, 'only the JPEG is new')
  t.same(filesOf(completions(h.sim)[2]!).map((x) => x.file_type), ['image/jpeg', 'image/png'])
  const text = await h.app.qwenMetrics.registry.metrics()
  t.match(text, /^qwen_uploads_total\{kind="image",result="uploaded"\} 2$/m, 'metrics: two uploads')
  t.match(text, /^qwen_uploads_total\{kind="image",result="cached"\} 2$/m, 'and two served by the cache')
  t.match(text, new RegExp(`^qwen_upload_bytes_total\\{kind="image"\\} ${png.bytes.length + jpeg.bytes.length}$`, 'm'))
})

t.test('gateway: concurrent requests with the same bytes share one upload; a given-up flight is redone', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  const png = attachment(encodePng(5, 5), 'image/png')
  h.sim.clearLog()
  h.sim.queue(email, { endpoint: 'sts', firstByteDelayMs: 100 })
  const both = await Promise.all([complete(h, [png]), complete(h, [png])])
  t.ok(both.every((r) => r.rec.outcome === 'ok'))
  t.equal(stsCalls(h.sim).length, 1, 'one flight for both')
  // The first requester gives up while its upload is under way: the second uploads for itself.
  const other = attachment(encodePng(6, 6), 'image/png')
  h.sim.queue(email, { endpoint: 'sts', firstByteDelayMs: 200 })
  const ac = new AbortController()
  const gone = complete(h, [other], { signal: ac.signal })
  setTimeout(() => ac.abort(), 50)
  await new Promise((resolve) => setTimeout(resolve, 10))
  const stays = complete(h, [other])
  await t.rejects(gone)
  t.equal((await stays).rec.outcome, 'ok')
  t.equal(stsCalls(h.sim).length, 3, 'the given-up flight was redone')
})

t.test('gateway: failover uploads again for the new identity', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  const [a, b] = h.sim.accounts
  h.sim.queue(a!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  h.sim.clearLog()
  const r = await complete(h, [attachment(encodePng(7, 7), 'image/png')])
  t.equal(r.rec.attempts, 2)
  t.same(stsCalls(h.sim).map((e) => e.account), [a!.email, b!.email], 'one grant per identity')
  t.same(puts(h.sim).map((e) => e.status), [200, 200])
  const sent = completions(h.sim)
  t.same(sent.map((e) => `${e.account} ${e.status}`), [`${a!.email} 200`, `${b!.email} 200`])
  t.match(filesOf(sent[1]!)[0]!.url, new RegExp(`/qwen-webui-sim/${b!.id}/`), 'the second attempt sends its own upload')
  t.match(r.answer.content, /^I see 1 attached file/)
})

t.test('gateway: an upload the upstream refuses fails the request with an upstream error, counted as failed', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { maxRetries: 0 } })
  h.sim.queue(h.sim.accounts[0]!.email, { endpoint: 'sts', fail: { status: 500 } })
  const png = encodePng(3, 3)
  const res = await fetch(`${h.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'qwen3-max', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }] }] }),
  })
  t.equal(res.status, 502)
  t.equal(((await res.json()) as any).error.code, 'upstream_error')
  t.equal(completions(h.sim).length, 0, 'no completion was sent without its file')
  t.match(await h.app.qwenMetrics.registry.metrics(), /^qwen_uploads_total\{kind="image",result="failed"\} 1$/m)
})

t.test('gateway: documents go through the 2026 parse step; the 2025 site attaches them as they are', async (t) => {
  for (const site of ['2026', '2025'] as const) {
    const h = await harness(t, { sim: { demoAccounts: 1, site, parseDelayMs: site === '2026' ? 200 : 0 } })
    h.sim.clearLog()
    const pdf = attachment(Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n'), 'application/pdf', 'file', 'report.pdf')
    const r = await complete(h, [pdf])
    t.match(r.answer.content, /^I see 1 attached file\(s\) \(file\)/, site)
    t.match(stsCalls(h.sim)[0]!.body, { filetype: 'file' })
    const parse = h.sim.log().filter((e) => e.path.startsWith('/api/v2/files/parse'))
    const f = filesOf(completions(h.sim)[0]!)[0]!
    t.match(f, { type: 'file', file_class: 'document', showType: 'file', context: 'full', file_type: 'application/pdf' })
    if (site === '2026') {
      t.equal(parse[0]!.path, '/api/v2/files/parse')
      t.ok(parse.length >= 3, 'the status was polled until done')
      t.same(parse.slice(1).map((e) => e.path).every((p) => p === '/api/v2/files/parse/status'), true)
      t.match(f.file, { meta: { parse_meta: { parse_status: 'success' } } })
    } else {
      t.same(parse.map((e) => e.status), [404], 'one try, 404, skipped')
    }
  }
})
