/**
 * Media refusals through the gateway and the simulator: each is a 400 in the OpenAI envelope naming
 * the part, for streaming and non-streaming requests, and nothing reaches the upstream (no chat is
 * created, no completion sent).
 */
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'
import { PDF, PNG, dataUrl } from './helpers/media-fixtures.js'
import { startMediaServer } from './helpers/media-server.js'

const upstreamCalls = <T extends { path: string }>(log: T[]): T[] => log.filter((e) => /chats\/new|chat\/completions/.test(e.path))
const ask = (...parts: unknown[]) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, ...parts] }] })
const img = (url: string) => ({ type: 'image_url', image_url: { url } })

interface ErrorBody { error: { message: string; type: string; param: string | null; code: string | null } }

t.test('malformed, empty, oversized, mistyped and unfetchable media: 400 naming the part, nothing upstream', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { uploadMaxBytes: 1024 } })
  const url = `${h.url}/v1/chat/completions`
  const cases: Array<[string, unknown, string, string, RegExp]> = [
    ['malformed base64', ask(img('data:image/png;base64,iVBOR%%%')), 'messages[0].content[1]', 'invalid_image_url', /not valid base64/],
    ['empty file', ask({ type: 'file', file: { file_data: 'data:application/pdf;base64,' } }), 'messages[0].content[1]', 'invalid_file', /empty/],
    ['over UPLOAD_MAX_BYTES', ask(img(dataUrl('image/png', Buffer.concat([PNG, Buffer.alloc(2048)])))), 'messages[0].content[1]', 'invalid_image_url', /larger than the limit of 1024 bytes/],
    ['a PDF sent as an image', ask(img(dataUrl('image/png', PDF))), 'messages[0].content[1]', 'invalid_image_url', /application\/pdf/],
    ['audio whose bytes are an image', ask({ type: 'input_audio', input_audio: { data: PNG.toString('base64'), format: 'wav' } }), 'messages[0].content[1]', 'invalid_file', /image\/png/],
    ['file_id', ask({ type: 'file', file: { file_id: 'file-abc' } }), 'messages[0].content[1]', 'invalid_file', /no Files API/],
    ['file: URL', ask(img('file:///etc/passwd')), 'messages[0].content[1]', 'invalid_image_url', /file:/],
    ['gopher: URL', ask(img('gopher://127.0.0.1:70/_GET')), 'messages[0].content[1]', 'invalid_image_url', /gopher:/],
    ['loopback URL', ask(img(`${srv.url}/file/png`)), 'messages[0].content[1]', 'invalid_image_url', /loopback address/],
    ['IPv6 loopback URL', ask(img(`http://[::1]:${srv.port}/file/png`)), 'messages[0].content[1]', 'invalid_image_url', /loopback/],
    ['private URL', ask(img('http://10.0.0.7/a.png')), 'messages[0].content[1]', 'invalid_image_url', /private/],
    ['cloud metadata URL', ask({ type: 'video_url', video_url: { url: 'http://169.254.169.254/latest/meta-data/' } }), 'messages[0].content[1]', 'invalid_file', /link-local/],
    ['a name resolving to loopback', ask(img(`http://localhost:${srv.port}/file/png`)), 'messages[0].content[1]', 'invalid_image_url', /localhost resolves to a loopback address/],
  ]
  for (const [name, payload, param, code, message] of cases) {
    for (const stream of [false, true]) {
      const res = await postJson(url, { ...(payload as object), stream })
      t.equal(res.status, 400, `${name} (stream ${stream}): 400`)
      t.match(res.headers.get('content-type'), /^application\/json/, 'a JSON error, not a stream')
      const j = await res.json() as ErrorBody
      t.same([j.error.type, j.error.code, j.error.param], ['invalid_request_error', code, param], `${name}: ${j.error.message}`)
      t.match(j.error.message, message)
    }
  }
  t.same(srv.hits, [], 'the local server was never contacted (it is not in MEDIA_FETCH_ALLOW)')
  t.same(upstreamCalls(h.sim.log()), [], 'nothing reached the upstream')
})

t.test('an allowed server that fails is a 400 too, and nothing reaches the upstream', async (t) => {
  const srv = await startMediaServer(t, { pdf: PDF })
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { mediaFetchAllow: '127.0.0.1', mediaFetchTimeoutMs: 300 } })
  const url = `${h.url}/v1/chat/completions`
  for (const [path, message] of [['/missing.png', /HTTP 404/], ['/file/pdf', /application\/pdf/], ['/slow', /within 300 ms/], ['/redirect/4', /more than 3 redirects/]] as const) {
    const res = await postJson(url, ask(img(`${srv.url}${path}`)))
    t.equal(res.status, 400, path)
    const j = await res.json() as ErrorBody
    t.same([j.error.code, j.error.param], ['invalid_image_url', 'messages[0].content[1]'])
    t.match(j.error.message, message)
  }
  t.same(upstreamCalls(h.sim.log()), [])
})

t.test('an image for a model without vision, with a fallback that cannot see: 400 on model', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { visionFallbackModel: 'qwen3-coder-plus' } })
  await h.app.qwenModels.refresh(true)
  const res = await postJson(`${h.url}/v1/chat/completions`, { ...ask(img(dataUrl('image/png', PNG))), model: 'qwq-32b' })
  t.equal(res.status, 400)
  const j = await res.json() as ErrorBody
  t.same([j.error.code, j.error.param], ['model_not_vision', 'model'])
  t.same(upstreamCalls(h.sim.log()), [])
})

t.test('a bad MEDIA_FETCH_ALLOW entry stops the start naming the option', async (t) => {
  await t.rejects(harness(t, { sim: { demoAccounts: 1 }, gateway: { mediaFetchAllow: ['10.0.0.0/40'] } }), /mediaFetchAllow: `10\.0\.0\.0\/40` has an invalid prefix length/)
})
