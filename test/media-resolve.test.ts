/** The resolver: inline and fetched parts become attachments in order; every failure is a 400 naming the part. */
import t from 'tap'
import { GatewayError } from '../src/errors.js'
import { allowListOption, createMediaResolver } from '../src/media/index.js'
import { OptionsError } from '../src/options.js'
import type { ChatMessage } from '../src/schemas.js'
import { JPEG, PDF, PNG, dataUrl } from './helpers/media-fixtures.js'
import { startMediaServer } from './helpers/media-server.js'

const img = (url: string) => ({ type: 'image_url', image_url: { url } })
const user = (...content: unknown[]) => ({ role: 'user', content }) as ChatMessage
const never = new AbortController().signal

function resolver (t: { teardown: (fn: () => unknown) => void }, allow: string | string[], timeoutMs = 5_000) {
  const m = createMediaResolver({ uploadMaxBytes: 64 * 1024, mediaFetchTimeoutMs: timeoutMs, mediaFetchAllow: allow })
  t.teardown(() => m.close())
  return m.resolver
}

async function error400 (p: Promise<unknown>): Promise<{ param: string | null; code: string; message: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  if (!(err instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(err)}`)
  return { param: err.param, code: err.code, message: err.message, ...(err.statusCode === 400 ? {} : { status: err.statusCode }) }
}

t.test('inline and fetched parts, in conversation order', async (t) => {
  const srv = await startMediaServer(t, { jpeg: JPEG })
  const r = resolver(t, ['127.0.0.1'])
  const list = await r.attachments([
    user({ type: 'text', text: 'two pictures' }, img(dataUrl('image/png', PNG)), img(`${srv.url}/file/jpeg`)),
    { role: 'assistant', content: 'ok' } as ChatMessage,
    user({ type: 'file', file: { file_data: dataUrl('application/pdf', PDF), filename: 'a.pdf' } }),
  ], never)
  t.same(list.map((a) => [a.mime, a.param]), [
    ['image/png', 'messages[0].content[1]'],
    ['image/jpeg', 'messages[0].content[2]'],
    ['application/pdf', 'messages[2].content[0]'],
  ])
  t.same(list[1]!.bytes, JPEG)
  t.same(await r.attachments([user({ type: 'text', text: 'no media' })], never), [])
})

t.test('fetched bytes are sniffed like inline ones', async (t) => {
  const srv = await startMediaServer(t, { pdf: PDF })
  const r = resolver(t, '127.0.0.1')
  const e = await error400(r.attachments([user(img(`${srv.url}/file/pdf`))], never))
  t.same([e.param, e.code], ['messages[0].content[0]', 'invalid_image_url'])
  t.match(e.message, /application\/pdf/)
})

t.test('URL refusals and failures are 400s naming the part', async (t) => {
  const srv = await startMediaServer(t, { png: PNG, big: Buffer.alloc(100 * 1024, 1) })
  const closed = resolver(t, '')
  const ssrf = await error400(closed.attachments([user({ type: 'text', text: 'x' }, img(`${srv.url}/file/png`))], never))
  t.same([ssrf.param, ssrf.code], ['messages[0].content[1]', 'invalid_image_url'])
  t.match(ssrf.message, /the URL was refused: 127\.0\.0\.1 is a loopback address .*MEDIA_FETCH_ALLOW/)
  const video = await error400(closed.attachments([user({ type: 'video_url', video_url: { url: 'http://169.254.169.254/latest/meta-data' } })], never))
  t.same([video.param, video.code], ['messages[0].content[0]', 'invalid_file'])
  t.same(srv.hits, [], 'the refused server was never contacted')

  const open = resolver(t, '127.0.0.0/8')
  const missing = await error400(open.attachments([user(img(`${srv.url}/missing.png`))], never))
  t.match(missing.message, /could not be fetched: the server answered HTTP 404/)
  const big = await error400(open.attachments([user(img(`${srv.url}/file/big`))], never))
  t.match(big.message, /larger than 65536 bytes \(UPLOAD_MAX_BYTES\)/)
  const redirect = await error400(open.attachments([user(img(`${srv.url}/to?url=${encodeURIComponent('http://10.0.0.1/x.png')}`))], never))
  t.match(redirect.message, /refused: 10\.0\.0\.1 is a private address/)
})

t.test('inline refusals come before any fetch', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const r = resolver(t, '127.0.0.1')
  const e = await error400(r.attachments([user(img(`${srv.url}/file/png`), img('data:image/png;base64,***'))], never))
  t.same([e.param, e.code], ['messages[0].content[1]', 'invalid_image_url'])
  t.same(srv.hits, [])
})

t.test('the first failure stops the other fetches; a timeout is a 400', async (t) => {
  const srv = await startMediaServer(t, {})
  const r = resolver(t, '127.0.0.1', 400)
  const started = Date.now()
  const e = await error400(r.attachments([user(img(`${srv.url}/slow`), img(`${srv.url}/slow`), img(`${srv.url}/missing`))], never))
  t.equal(e.param, 'messages[0].content[2]')
  t.ok(Date.now() - started < 350, 'did not wait for the slow ones')
  const slow = await error400(r.attachments([user(img(`${srv.url}/slow`))], never))
  t.match(slow.message, /no complete answer within 400 ms \(MEDIA_FETCH_TIMEOUT_MS\)/)
})

t.test('a client that goes away ends the fetches with its reason', async (t) => {
  const srv = await startMediaServer(t, {})
  const r = resolver(t, '127.0.0.1')
  const ctl = new AbortController()
  const reason = new Error('client closed')
  setTimeout(() => ctl.abort(reason), 50)
  t.equal(await r.attachments([user(img(`${srv.url}/slow`))], ctl.signal).catch((e: unknown) => e), reason)
  t.equal(await r.attachments([user(img(`${srv.url}/slow`))], ctl.signal).catch((e: unknown) => e), reason, 'already aborted')
})

t.test('MEDIA_FETCH_ALLOW entries are checked when the resolver is built', async (t) => {
  t.throws(() => allowListOption('10.0.0.0/99'), OptionsError)
  t.throws(() => createMediaResolver({ uploadMaxBytes: 1, mediaFetchTimeoutMs: 1, mediaFetchAllow: ['not a host'] }), /Invalid option mediaFetchAllow: `not a host` is neither/)
})

t.test('all of a request\'s files together stay under the total budget (BODY_LIMIT_BYTES)', async (t) => {
  const m = createMediaResolver({ uploadMaxBytes: 64 * 1024, mediaFetchTimeoutMs: 1000, mediaFetchAllow: [], bodyLimitBytes: PNG.length + JPEG.length })
  t.teardown(() => m.close())
  const fits = await m.resolver.attachments([user(img(dataUrl('image/png', PNG)), img(dataUrl('image/jpeg', JPEG)))], never)
  t.equal(fits.length, 2, 'exactly at the budget')
  const err = await m.resolver.attachments([user(img(dataUrl('image/png', PNG)), img(dataUrl('image/jpeg', JPEG)), img(dataUrl('image/png', PNG)))], never).catch((e: unknown) => e)
  t.type(err, GatewayError)
  t.equal((err as GatewayError).statusCode, 400)
  t.equal((err as GatewayError).code, 'invalid_file')
  t.equal((err as GatewayError).param, 'messages[0].content[2]', 'names the part that went over')
  t.match((err as Error).message, /add up to more than/)
})
