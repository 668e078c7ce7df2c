/**
 * The OpenAI media endpoints against the simulator: `/v1/images/generations` (n, both response
 * formats, PNG bytes checked), `/v1/images/edits` through the `openai` SDK, `/v1/videos` through
 * `openai.videos` (create / retrieve / downloadContent), a failing task, and embedding into a host
 * that registered `@fastify/multipart` itself.
 */
import multipart from '@fastify/multipart'
import Fastify from 'fastify'
import OpenAI, { toFile } from 'openai'
import t from 'tap'
import qwenGateway from '../src/index.js'
import { encodePng, pngSize } from '../src/media/png.js'
import { harness, postJson, startSim } from './helpers/setup.js'
import { JPEG_1PX } from './helpers/media.js'

const sdk = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 })

t.test('/v1/images/generations: n=2, url and b64_json; PNG dimensions follow size', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  h.sim.clearLog()
  const r = await postJson(`${h.url}/v1/images/generations`, { prompt: 'a red fox', n: 2, size: '1792x1024' })
  t.equal(r.status, 200)
  const body = await r.json() as { created: number; data: Array<{ url: string }> }
  t.equal(body.data.length, 2)
  t.not(body.data[0]!.url, body.data[1]!.url, 'two generations')
  for (const d of body.data) t.same(pngSize(Buffer.from(await (await fetch(d.url)).arrayBuffer())), { width: 64, height: 36 })
  t.equal(h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').length, 2, 'two upstream generations')
  t.ok(h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').every((e) => (e.body as any).size === '16:9' && (e.body as any).model === 'qwen3-max'))

  const b64 = await sdk(h.url).images.generate({ prompt: 'a blue fox', n: 2, size: '1024x1536', response_format: 'b64_json', model: 'qwen3-max-image' })
  t.equal(b64.data!.length, 2)
  for (const d of b64.data!) {
    t.notOk(d.url)
    t.same(pngSize(Buffer.from(d.b64_json!, 'base64')), { width: 43, height: 64 }, 'downloaded by the gateway, 2:3')
  }
  const def = await sdk(h.url).images.generate({ prompt: 'x' })
  t.match(def.data![0]!.url, /^http:\/\/127\.0\.0\.1:\d+\/qwen-webui-sim\/output\//, 'url by default, n=1')

  for (const [bad, param] of [[{ prompt: 'x', n: 5 }, 'n'], [{ prompt: 'x', n: 0 }, 'n'], [{ prompt: 'x', size: 'big' }, 'size'], [{ prompt: 'x', response_format: 'png' }, 'response_format'], [{ prompt: '  ' }, 'prompt'], [{}, 'prompt'], [{ prompt: 'x', model: 'qwen3-max-video' }, 'model']] as const) {
    const e = await postJson(`${h.url}/v1/images/generations`, bad)
    t.equal(e.status, 400, JSON.stringify(bad))
    t.equal((await e.json() as any).error.param, param)
  }
  const nf = await postJson(`${h.url}/v1/images/generations`, { prompt: 'x', model: 'qwen3-coder-plus' })
  t.equal(nf.status, 404, 'a model without t2i')
})

t.test('/v1/images/edits through the SDK: the image is uploaded for the identity, image_edit sent', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.clearLog()
  const client = sdk(h.url)
  const res = await client.images.edit({ image: await toFile(encodePng(8, 8), 'cat.png', { type: 'image/png' }), prompt: 'add a hat', size: '1024x1024' })
  t.same(pngSize(Buffer.from(await (await fetch(res.data![0]!.url!)).arrayBuffer())), { width: 64, height: 64 })
  const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as any
  t.match(sent.messages[0], { chat_type: 'image_edit', content: 'add a hat', files: [{ type: 'image', file_type: 'image/png', name: 'cat.png' }] })
  t.equal(h.sim.log().filter((e) => e.method === 'PUT').length, 1)
  // Two images (image[]), a JPEG declared as PNG (sniffed as JPEG), b64_json.
  const two = await client.images.edit({
    image: [await toFile(JPEG_1PX, 'a.png', { type: 'image/png' }), await toFile(encodePng(3, 3), 'b.png', { type: 'image/png' })],
    prompt: 'merge', response_format: 'b64_json', n: 1, model: 'qwen3-max-image',
  })
  t.ok(pngSize(Buffer.from(two.data![0]!.b64_json!, 'base64')))
  const files = (h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').at(-1)!.body as any).messages[0].files
  t.same(files.map((f: any) => f.file_type), ['image/jpeg', 'image/png'], 'types from the bytes')
  // Refusals.
  const form = (parts: Array<[string, string | Blob, string?]>): FormData => {
    const f = new FormData()
    for (const [k, v, name] of parts) name ? f.append(k, v as Blob, name) : f.append(k, v as string)
    return f
  }
  const post = (f: FormData) => fetch(`${h.url}/v1/images/edits`, { method: 'POST', body: f })
  const cases: Array<[FormData, string, string]> = [
    [form([['prompt', 'x']]), 'image', 'no image'],
    [form([['image', new Blob([Buffer.from('not an image')]), 'x.png'], ['prompt', 'x']]), 'image[0]', 'not an image'],
    [form([['image', new Blob([encodePng(1, 1)]), 'x.png']]), 'prompt', 'no prompt'],
    [form([['mask', new Blob([encodePng(1, 1)]), 'm.png'], ['prompt', 'x']]), 'mask', 'unknown file field'],
  ]
  for (const [f, param, what] of cases) {
    const r = await post(f)
    t.equal(r.status, 400, what)
    t.equal((await r.json() as any).error.param, param, what)
  }
  const json = await postJson(`${h.url}/v1/images/edits`, { prompt: 'x' })
  t.equal(json.status, 400)
  t.equal((await json.json() as any).error.code, 'invalid_content_type')
})

t.test('/v1/images/edits and /v1/videos: UPLOAD_MAX_BYTES is the file cap', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { uploadMaxBytes: 1024 } })
  const big = encodePng(64, 64)
  t.ok(big.length > 1024)
  const f = new FormData()
  f.append('image', new Blob([big]), 'big.png')
  f.append('prompt', 'x')
  const r = await fetch(`${h.url}/v1/images/edits`, { method: 'POST', body: f })
  t.equal(r.status, 400)
  t.match(await r.json(), { error: { code: 'file_too_large', param: 'image', message: /larger than 1024 bytes/ } })
  const v = new FormData()
  v.append('prompt', 'x')
  v.append('input_reference', new Blob([big]), 'big.png')
  const rv = await fetch(`${h.url}/v1/videos`, { method: 'POST', body: v })
  t.equal(rv.status, 400)
  t.match(await rv.json(), { error: { code: 'file_too_large', param: 'input_reference' } })
})

t.test('/v1/videos through openai.videos: create, retrieve until completed, downloadContent; JSON too; a failing task', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, videoMs: 300 } })
  const client = sdk(h.url)
  const created = await client.videos.create({ prompt: 'waves on a beach', size: '1280x720', seconds: '4' })
  t.match(created, { object: 'video', status: 'in_progress', progress: 0, prompt: 'waves on a beach', size: '1280x720', seconds: '4', model: 'qwen3-max', error: null, completed_at: null })
  t.match(created.id, /^video_[0-9a-f]{32}$/)
  const early = await client.videos.downloadContent(created.id).then(() => undefined, (e: unknown) => e)
  t.match(early, { status: 400 }, 'not ready yet')
  let v = await client.videos.retrieve(created.id)
  for (let i = 0; i < 50 && v.status !== 'completed'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    v = await client.videos.retrieve(created.id)
  }
  t.equal(v.status, 'completed')
  t.equal(v.progress, 100)
  t.type(v.completed_at, 'number')
  const content = await client.videos.downloadContent(created.id)
  t.equal(content.headers.get('content-type'), 'video/mp4')
  const bytes = Buffer.from(await content.arrayBuffer())
  t.equal(bytes.toString('latin1', 4, 8), 'ftyp')
  t.match(h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body, { stream: false, size: '16:9', messages: [{ chat_type: 't2v' }] })

  const json = await postJson(`${h.url}/v1/videos`, { prompt: 'a cat', model: 'qwen3-max-video', size: '720x1280', seconds: 8 })
  t.equal(json.status, 200)
  const jv = await json.json() as any
  t.match(jv, { status: 'in_progress', seconds: '8', model: 'qwen3-max-video' })
  t.equal((h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').at(-1)!.body as any).size, '9:16')

  h.sim.queue(h.sim.accounts[0]!.email, { videoFail: 'moderation', videoMs: 0 })
  const bad = await client.videos.create({ prompt: 'forbidden' })
  const failed = await client.videos.retrieve(bad.id)
  t.match(failed, { status: 'failed', error: { code: 'video_generation_failed', message: /moderation/ } })
  t.match(await client.videos.downloadContent(bad.id).then(() => undefined, (e: unknown) => e), { status: 400 })
  t.match(await client.videos.retrieve('video_nope').then(() => undefined, (e: unknown) => e), { status: 404 })
  for (const [body, param] of [[{}, 'prompt'], [{ prompt: 'x', size: 'wide' }, 'size'], [{ prompt: 'x', seconds: 'four' }, 'seconds'], [{ prompt: 7 }, 'prompt']] as const) {
    const r = await postJson(`${h.url}/v1/videos`, body)
    t.equal(r.status, 400, JSON.stringify(body))
    t.equal((await r.json() as any).error.param, param)
  }
  const ref = await client.videos.create({ prompt: 'animate this', input_reference: await toFile(encodePng(2, 2), 'ref.png', { type: 'image/png' }) })
  t.equal(ref.status, 'in_progress')
  t.match((h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').at(-1)!.body as any).messages[0].files, [{ type: 'image' }], 'the reference image was uploaded')
})

t.test('a job past VIDEO_TIMEOUT_MS fails; an upstream refusal at creation is a status', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, videoMs: 60_000 }, gateway: { videoTimeoutMs: 100 } })
  const client = sdk(h.url)
  const v = await client.videos.create({ prompt: 'slow' })
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.match(await client.videos.retrieve(v.id), { status: 'failed', error: { code: 'upstream_timeout' } })
  h.sim.queue(h.sim.accounts[0]!.email, { fail: 'rate_limited', rateLimitHours: 2 })
  t.match(await client.videos.create({ prompt: 'x' }).then(() => undefined, (e: unknown) => e), { status: 429 })
})

t.test('embedding: the host registered @fastify/multipart itself; edits and videos still parse', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1, videoMs: 0 })
  const host = Fastify({ logger: false })
  await host.register(multipart, { attachFieldsToBody: false })
  host.post('/host-upload', async (req) => {
    const f = await req.file()
    return { field: f?.fieldname, bytes: (await f!.toBuffer()).length }
  })
  await host.register(qwenGateway, { prefix: '/qwen', qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie) })
  t.teardown(() => host.close())
  await host.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(host.server.address() as { port: number }).port}`
  const client = sdk(`${base}/qwen`)
  const res = await client.images.edit({ image: await toFile(encodePng(4, 4), 'x.png', { type: 'image/png' }), prompt: 'edit' })
  t.ok(pngSize(Buffer.from(await (await fetch(res.data![0]!.url!)).arrayBuffer())))
  const v = await client.videos.create({ prompt: 'embedded' })
  t.equal(v.object, 'video')
  const f = new FormData()
  f.append('doc', new Blob([Buffer.from('hello')]), 'a.txt')
  t.same(await (await fetch(`${base}/host-upload`, { method: 'POST', body: f })).json(), { field: 'doc', bytes: 5 }, "the host's own multipart route still works")
})

t.test('/v1/videos: a job is seen only by the API key that created it', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, videoMs: 300 }, gateway: { apiKey: 'alice:sk-alice-0123456789|||bob:sk-bob-0123456789' } })
  const post = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-alice-0123456789' }, body: JSON.stringify({ prompt: 'a cat' }) })
  t.equal(post.status, 200)
  const id = ((await post.json()) as { id: string }).id
  const mine = await fetch(`${h.url}/v1/videos/${id}`, { headers: { authorization: 'Bearer sk-alice-0123456789' } })
  t.equal(mine.status, 200)
  await mine.arrayBuffer()
  const theirs = await fetch(`${h.url}/v1/videos/${id}`, { headers: { authorization: 'Bearer sk-bob-0123456789' } })
  t.equal(theirs.status, 404)
  t.equal(((await theirs.json()) as any).error.code, 'video_not_found')
})
