/**
 * Generation through chat completions (`-image`, `-image_edit`, `-video`) and the model list,
 * gateway + simulator over real sockets: images come back as Markdown whose URL serves a PNG of
 * the requested aspect ratio; videos are polled to the end, with keep-alives and progress while a
 * stream waits; failures and timeouts are honest errors.
 */
import t from 'tap'
import { pngSize } from '../src/media/png.js'
import { harness, postJson, sseData } from './helpers/setup.js'

const chat = (url: string, model: string, extra: Record<string, unknown> = {}, content = 'a lighthouse at dusk') =>
  postJson(`${url}/v1/chat/completions`, { model, messages: [{ role: 'system', content: 'be creative' }, { role: 'user', content }], ...extra })

const markdownUrl = (content: string, kind: 'image' | 'video'): string => {
  const m = (kind === 'image' ? /^!\[image\]\((\S+)\)$/ : /^\[video\]\((\S+)\)$/).exec(content)
  if (!m) throw new Error(`not a markdown ${kind}: ${content}`)
  return m[1]!
}

t.test('/v1/models lists generation variants only for models whose chat types allow them', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const ids = ((await (await fetch(`${h.url}/v1/models`)).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id)
  for (const id of ['qwen3-max-image', 'qwen3-max-image_edit', 'qwen3-max-video']) t.ok(ids.includes(id), id)
  t.notOk(ids.some((id) => id.startsWith('qwen3-coder-plus-') && /image|video/.test(id)), 'a model without t2i/t2v has none')
  t.notOk(ids.includes('qwen3-max-image-edit'), 'the hyphen spelling is accepted, not listed')
  const one = await (await fetch(`${h.url}/v1/models/qwen3-max-image-edit`)).json() as { id: string; root: string }
  t.same([one.id, one.root], ['qwen3-max-image-edit', 'qwen3-max'])
  for (const bad of ['qwen3-max-thinking-image', 'qwen3-max-image-thinking', 'qwen3-coder-plus-video', 'qwen3-max-search-video']) {
    const r = await chat(h.url, bad)
    t.equal(r.status, 404, bad)
    t.equal((await r.json() as any).error.code, 'model_not_found')
  }
})

t.test('-image: Markdown image, non-stream and stream; the PNG follows the requested aspect ratio', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const sizes: Array<[string | undefined, string, [number, number]]> = [
    [undefined, '1:1', [64, 64]], ['1792x1024', '16:9', [64, 36]], ['1024x1792', '9:16', [36, 64]], ['1536x1024', '3:2', [64, 43]], ['4:3', '4:3', [64, 48]],
  ]
  for (const [size, ratio, [w, h2]] of sizes) {
    h.sim.clearLog()
    const r = await chat(h.url, 'qwen3-max-image', size ? { size } : {})
    t.equal(r.status, 200)
    const body = await r.json() as any
    t.equal(body.model, 'qwen3-max-image')
    t.equal(body.choices[0].finish_reason, 'stop')
    const url = markdownUrl(body.choices[0].message.content, 'image')
    const png = Buffer.from(await (await fetch(url)).arrayBuffer())
    t.same(pngSize(png), { width: w, height: h2 }, `${size ?? '(none)'} → ${ratio}`)
    const sent = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as any
    t.equal(sent.size, ratio)
    t.match(sent.messages[0], { chat_type: 't2i', content: 'a lighthouse at dusk', feature_config: { thinking_enabled: false } }, 'the last user message is the prompt')
    t.equal(h.sim.log().find((e) => e.path === '/api/v2/chats/new')!.body && (h.sim.log().find((e) => e.path === '/api/v2/chats/new')!.body as any).chat_type, 't2i')
  }
  const s = await chat(h.url, 'qwen3-max-image', { stream: true, size: '1024x1024', stream_options: { include_usage: true } })
  t.equal(s.status, 200)
  t.match(s.headers.get('content-type'), /text\/event-stream/)
  const data = sseData(await s.text())
  t.equal(data.at(-1), '[DONE]')
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d))
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')
  t.same(pngSize(Buffer.from(await (await fetch(markdownUrl(content, 'image'))).arrayBuffer())), { width: 64, height: 64 })
  t.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'stop'))
  t.ok(chunks.at(-1).usage.total_tokens > 0, 'usage when asked')
})

t.test('-image: bad input is a 400 naming the field; upstream failures fail over, then are statuses', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  for (const [size, param] of [['huge', 'size'], ['0x100', 'size'], [12, 'size']] as const) {
    const r = await chat(h.url, 'qwen3-max-image', { size })
    t.equal(r.status, 400)
    t.match(await r.json(), { error: { param, code: 'invalid_value' } })
  }
  const empty = await chat(h.url, 'qwen3-max-image', {}, '   ')
  t.match(await empty.json(), { error: { param: 'messages', message: /last user message/ } })
  const edit = await chat(h.url, 'qwen3-max-image_edit')
  t.equal(edit.status, 400)
  t.match(await edit.json(), { error: { param: 'messages', message: /needs an image/ } })
  h.sim.queue(h.sim.accounts[0]!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  const over = await chat(h.url, 'qwen3-max-image')
  t.equal(over.status, 200, 'the second account generated it')
  for (const a of h.sim.accounts) h.sim.queue(a.email, { fail: 'bad_request' })
  const bad = await chat(h.url, 'qwen3-max-image', { stream: true })
  t.equal(bad.status, 502, 'a refusal before anything was sent is a status, also for streams')
  t.equal((await bad.json() as any).error.code, 'upstream_bad_request')
})

t.test('-video: the task is polled to the end; stream gets keep-alives and progress as reasoning', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, videoMs: 700 }, gateway: { keepAliveIntervalMs: 100, videoPollIntervalMs: 100 } })
  h.sim.clearLog()
  const r = await chat(h.url, 'qwen3-max-video', { size: '1280x720' })
  t.equal(r.status, 200)
  const body = await r.json() as any
  const url = markdownUrl(body.choices[0].message.content, 'video')
  const mp4 = Buffer.from(await (await fetch(url)).arrayBuffer())
  t.equal(mp4.toString('latin1', 4, 8), 'ftyp', 'MP4 bytes')
  const create = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!
  t.match(create.body, { stream: false, size: '16:9', messages: [{ chat_type: 't2v' }] })
  t.ok(h.sim.log().filter((e) => e.path.startsWith('/api/v1/tasks/status/')).length >= 2, 'polled')

  const s = await chat(h.url, 'qwen3-max-video', { stream: true })
  const text = await s.text()
  t.match(text, /: keep-alive/, 'keep-alive comments while waiting')
  const chunks = sseData(text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d))
  const reasoning = chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? '').join('')
  t.match(reasoning, /Generating the video: \d+%/, 'progress as reasoning text')
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')
  t.match(content, /^\[video\]\(http/)
})

t.test('-video: a failing task and a timeout are honest errors; VIDEO_TIMEOUT_MS replaces REQUEST_TIMEOUT_MS', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, videoMs: 300 }, gateway: { videoPollIntervalMs: 50, requestTimeoutMs: 100, videoTimeoutMs: 5_000 } })
  const email = h.sim.accounts[0]!.email
  const ok = await chat(h.url, 'qwen3-max-video')
  t.equal(ok.status, 200, 'a 300 ms video outlives the 100 ms request budget')
  h.sim.queue(email, { firstByteDelayMs: 300 })
  t.equal((await chat(h.url, 'qwen3-max', {})).status, 504, 'while a 300 ms text completion does not')
  h.sim.queue(email, { videoFail: 'content moderation' })
  const failed = await chat(h.url, 'qwen3-max-video')
  t.equal(failed.status, 502)
  t.match(await failed.json(), { error: { code: 'upstream_error', message: /video generation failed: content moderation/ } })
  h.sim.queue(email, { videoFail: 'quota' })
  const sf = await chat(h.url, 'qwen3-max-video', { stream: true })
  t.equal(sf.status, 200, 'committed before the task ended')
  const frames = sseData(await sf.text())
  t.match(JSON.parse(frames.at(-2)!), { error: { message: /failed: quota/ } })
  t.equal(frames.at(-1), '[DONE]')

  const slow = await harness(t, { sim: { demoAccounts: 1, videoMs: 10_000 }, gateway: { videoPollIntervalMs: 50, videoTimeoutMs: 300 } })
  const late = await chat(slow.url, 'qwen3-max-video')
  t.equal(late.status, 504)
  t.match(await late.json(), { error: { code: 'upstream_timeout', message: /VIDEO_TIMEOUT_MS/ } })
  const lateStream = await chat(slow.url, 'qwen3-max-video', { stream: true })
  t.match(JSON.parse(sseData(await lateStream.text()).at(-2)!), { error: { message: /VIDEO_TIMEOUT_MS/ } })
})
