/** The media wire's pure parts, video polling, the job store, and the chat helpers of the generation models. */
import { createHash } from 'node:crypto'
import t from 'tap'
import { UpstreamError } from '../src/errors.js'
import { imagesToEdit, lastUserText, ratioOf } from '../src/media/generate-chat.js'
import { imageAttachment, sniffImage } from '../src/media/generate-input.js'
import { BMP } from './helpers/media-fixtures.js'
import { encodePng } from '../src/media/png.js'
import { MemoryVideoJobStore, type VideoJob } from '../src/media/video-jobs.js'
import { pollVideo, sleep } from '../src/media/video.js'
import { imageDims } from '../src/simulator/generate.js'
import { aspectRatio, imageUrlOf, taskStatusOf, videoTaskOf } from '../src/upstream/media.js'
import { JPEG_1PX } from './helpers/media.js'

t.test('size → aspect ratio: the README table', async (t) => {
  const table: Record<string, string[]> = {
    '1:1': ['256x256', '512x512', '1024x1024', '2048x2048', '1:1', 'auto', ''],
    '16:9': ['1792x1024', '1280x720', '1920x1080', '16:9'],
    '9:16': ['1024x1792', '720x1280', '9:16'],
    '3:2': ['1536x1024', '1152x768', '3:2'],
    '2:3': ['1024x1536', '768x1152', '2:3'],
    '4:3': ['1024x768', '4:3'],
    '3:4': ['768x1024', '3:4'],
  }
  for (const [ratio, sizes] of Object.entries(table)) for (const s of sizes) t.equal(aspectRatio(s), ratio, s)
  t.equal(aspectRatio(undefined), '1:1')
  t.equal(aspectRatio('21:9'), '16:9', 'an unsupported ratio goes to the nearest')
  for (const bad of ['big', '0x100', '100x0', '1024', '-1x5']) t.equal(aspectRatio(bad), undefined, bad)
  t.throws(() => ratioOf(12), { param: 'size', code: 'invalid_value' })
  t.throws(() => ratioOf('x', 'input.size'), { name: 'InvalidRequestError', param: 'input.size' })
  t.equal(ratioOf(null), '1:1')
  t.same([imageDims('16:9'), imageDims('9:16'), imageDims('1:1')], [{ width: 64, height: 36 }, { width: 36, height: 64 }, { width: 64, height: 64 }])
})

t.test('video task ids and task status answers', async (t) => {
  t.equal(videoTaskOf({ success: true, data: { messages: [{ extra: { wanx: { task_id: 'abc' } } }] } }), 'abc')
  t.equal(videoTaskOf({ data: { other: [{ deep: { task_id: 'def' } }] } }), 'def', 'anywhere in the answer')
  t.throws(() => videoTaskOf({ success: true, data: {} }), /no task id/)
  t.throws(() => videoTaskOf({ success: false, data: { code: 'RateLimited', details: 'x', num: 1 } }), { name: 'UpstreamError', kind: 'rate_limited' })
  t.same(taskStatusOf({ task_status: 'running', progress: 40.4, message: 'rendering' }), { state: 'running', progress: 40, message: 'rendering' })
  t.same(taskStatusOf({ success: true, data: { task_status: 'pending', progress: 500 } }), { state: 'running' })
  t.same(taskStatusOf({ task_status: 'success', content: 'https://cdn/x.mp4' }), { state: 'success', url: 'https://cdn/x.mp4' })
  t.same(taskStatusOf({ data: { status: 'FAILED', message: 'policy' } }), { state: 'failed', message: 'policy' })
  t.same(taskStatusOf({ task_status: 'failed' }), { state: 'failed' })
  t.throws(() => taskStatusOf({ task_status: 'success', content: '' }), /without a result URL/)
  t.throws(() => taskStatusOf({}), /no task_status/)
  t.throws(() => taskStatusOf({ success: false, data: { code: 'Not_Found', details: 'Task not found' } }), { name: 'UpstreamError', kind: 'bad_request' })
})

t.test('image URLs in frames', async (t) => {
  t.equal(imageUrlOf({ choices: [{ delta: { phase: 'image_gen', content: 'https://cdn/a.png?key=1' } }] }), 'https://cdn/a.png?key=1')
  t.equal(imageUrlOf({ choices: [{ delta: { content: '', extra: { image_list: [null, { image: 'https://cdn/b.png' }] } } }] }), 'https://cdn/b.png')
  t.equal(imageUrlOf({ choices: [{ delta: { phase: 'answer', content: 'see https://x' } }] }), undefined, 'text with a URL is not an image')
  t.equal(imageUrlOf({ choices: [{ delta: { extra: { image_list: ['x'] } } }] }), undefined)
  t.equal(imageUrlOf({ 'response.created': { chat_id: 'c', parent_id: 'p', response_id: 'r' } }), undefined)
  t.throws(() => imageUrlOf({ error: { code: 'internal_error', details: 'boom' } }), UpstreamError)
})

t.test('pollVideo: backoff, progress once per change, failure, abort', async (t) => {
  const answers = [
    { state: 'running' as const }, { state: 'running' as const, progress: 10 }, { state: 'running' as const, progress: 10 },
    { state: 'running' as const, progress: 50, message: 'x' }, { state: 'success' as const, url: 'https://v' },
  ]
  const seen: number[] = []
  const started = Date.now()
  const url = await pollVideo(async () => answers.shift()!, { signal: new AbortController().signal, intervalMs: 10, maxIntervalMs: 15, onProgress: (s) => seen.push(s.progress!) })
  t.equal(url, 'https://v')
  t.same(seen, [10, 50])
  t.ok(Date.now() - started >= 10 + 15 + 15 + 15 - 5, 'waits grow, capped')
  await t.rejects(pollVideo(async () => ({ state: 'failed', message: 'nsfw' }), { signal: new AbortController().signal, intervalMs: 10 }), { message: /failed: nsfw/, code: 'upstream_error' })
  const ac = new AbortController()
  setTimeout(() => ac.abort(new Error('gone')), 20)
  await t.rejects(pollVideo(async () => ({ state: 'running' }), { signal: ac.signal, intervalMs: 1000 }), /gone/)
  await t.rejects(sleep(10, ac.signal), /gone/, 'an aborted signal rejects at once')
})

t.test('video job store: TTL and bound', async (t) => {
  let now = 0
  const s = new MemoryVideoJobStore({ ttlMs: 100, maxEntries: 2, now: () => now })
  const job = (id: string) => ({ id, status: 'in_progress' }) as unknown as VideoJob
  await s.set(job('a'))
  await s.set(job('b'))
  await s.set(job('a'))
  await s.set(job('c'))
  t.equal(await s.get('b'), undefined, 'the least recently set goes')
  t.ok(await s.get('a'))
  now = 100
  t.equal(await s.get('a'), undefined, 'expired')
})

t.test('chat helpers: the last user text, the images to edit; sniffing', async (t) => {
  t.equal(lastUserText([{ role: 'user', content: 'old' }, { role: 'assistant', content: 'x' }, { role: 'user', content: [{ type: 'text', text: 'new' }, { type: 'image_url' }, { type: 'text', text: 'more' }] }]), 'new\nmore')
  t.equal(lastUserText([{ role: 'user', content: null }]), '')
  t.equal(lastUserText([{ role: 'assistant', content: 'x' }]), '')
  const img = (param: string) => ({ kind: 'image' as const, mime: 'image/png', bytes: Buffer.alloc(1), filename: 'a', sha256: param, param })
  const list = [img('messages[1].content[0]'), img('messages[3].content[1]'), { ...img('messages[4].content[0]'), kind: 'file' as const }, img('messages[3].content[2]')]
  t.same(imagesToEdit(list).map((a) => a.param), ['messages[3].content[1]', 'messages[3].content[2]'], 'the most recent message with images')
  t.same(imagesToEdit([]), [])
  t.same(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/bmp'], [
    sniffImage(encodePng(1, 1)), sniffImage(JPEG_1PX), sniffImage(Buffer.from('GIF89a......')), sniffImage(Buffer.from('RIFF....WEBPVP8 ')), sniffImage(BMP),
  ])
  t.equal(sniffImage(Buffer.from('BM is not enough to make a bitmap')), undefined, 'the same strict sniffer as chat media')
  t.equal(sniffImage(Buffer.from('hello world, not an image')), undefined)
  const a = imageAttachment(JPEG_1PX, undefined, 'image[0]')
  t.match(a, { kind: 'image', mime: 'image/jpeg', filename: 'image.jpeg', sha256: createHash('sha256').update(JPEG_1PX).digest('hex') })
  t.throws(() => imageAttachment(Buffer.alloc(0), 'x', 'image[1]'), { param: 'image[1]', code: 'invalid_image', message: /empty/ })
})
