/**
 * HTTP parser errors are answered in the OpenAI envelope (raw sockets: no HTTP client would send these
 * requests), with a real HTTP/1.1 status line and `content-type: application/json`, then the connection
 * is closed.
 */
import net from 'node:net'
import { PassThrough } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import qwenGateway, { buildServer } from '../src/index.js'
import { clientErrorResponse, qwenClientErrorHandler } from '../src/build.js'

interface RawResponse { statusLine: string; status: number; headers: Record<string, string>; body: string; closed: boolean }

/** Send raw bytes, read until the server closes the connection, and parse the one response. */
function rawRequest (port: number, bytes: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes))
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('the server did not close the connection')) }, 5000)
    socket.on('data', (d) => chunks.push(d))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('utf8')
      const split = text.indexOf('\r\n\r\n')
      const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of headerLines) {
        const i = l.indexOf(':')
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
      }
      resolve({ statusLine, status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4), closed: true })
    })
  })
}

const GOOD_START = 'GET /health HTTP/1.1\r\nHost: localhost\r\n'

const cases: Array<[string, string | Buffer, number, string]> = [
  ['a NUL in a header value', `${GOOD_START}X-Test: a\u0000b\r\n\r\n`, 400, 'invalid_http_request'],
  ['a bare CR in a header value', `${GOOD_START}X-Test: a\rb\r\n\r\n`, 400, 'invalid_http_request'],
  ['a bare LF in a header value', `${GOOD_START}X-Test: a\nb\r\n\r\n`, 400, 'invalid_http_request'],
  ['a folded header', `${GOOD_START}X-Test: a\r\n  b\r\n\r\n`, 400, 'invalid_http_request'],
  ['a space before the colon', `${GOOD_START}X-Test : a\r\n\r\n`, 400, 'invalid_http_request'],
  ['a garbage request line', 'HELLO THERE\r\n\r\n', 400, 'invalid_http_request'],
  ['binary noise', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), 400, 'invalid_http_request'],
  ['a 20 KB header', `${GOOD_START}X-Big: ${'x'.repeat(20 * 1024)}\r\n\r\n`, 431, 'request_header_too_large'],
]

/** A subtest's `t`. */
type Sub = Parameters<Parameters<typeof t.test>[0]>[0]

async function check (t: Sub, port: number): Promise<void> {
  for (const [name, bytes, status, code] of cases) {
    const res = await rawRequest(port, bytes)
    t.match(res.statusLine, new RegExp(`^HTTP/1\\.1 ${status} \\S`), `${name}: status line ${res.statusLine}`)
    t.equal(res.status, status)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body), `${name}: content-length matches the body`)
    t.equal(res.headers.connection, 'close')
    const j = JSON.parse(res.body) as { error: { message: string; type: string; param: unknown; code: string } }
    t.same(Object.keys(j), ['error'])
    t.same([j.error.type, j.error.code, j.error.param], ['invalid_request_error', code, null], `${name}: ${j.error.message}`)
    t.type(j.error.message, 'string')
    t.ok(res.closed, `${name}: the connection is closed`)
  }
}

t.test('buildServer answers parser errors in the OpenAI envelope', async (t) => {
  const app = await buildServer({ cookies: [] }, { logger: false })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  await check(t, port)
  const fine = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(fine.status, 200, 'the server keeps serving')
})

t.test('an embedder can install the same handler', async (t) => {
  const host = Fastify({ logger: false, clientErrorHandler: qwenClientErrorHandler })
  await host.register(qwenGateway, { prefix: '/qwen', cookies: [] })
  t.teardown(() => host.close())
  await host.listen({ port: 0, host: '127.0.0.1' })
  await check(t, (host.server.address() as { port: number }).port)
})

t.test('the response for each kind of client error', async (t) => {
  t.same(clientErrorResponse({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }), {
    status: 408, body: { error: { message: 'The request was not received in time', type: 'invalid_request_error', param: null, code: 'request_timeout' } },
  })
  t.equal(clientErrorResponse({ code: 'HPE_HEADER_OVERFLOW' }).status, 431)
  t.equal(clientErrorResponse({ code: 'HPE_INVALID_METHOD', reason: 'Invalid method encountered' }).body.error.message, 'Malformed HTTP request: Invalid method encountered')
  t.equal(clientErrorResponse({}).body.error.message, 'Malformed HTTP request')
  t.ok(clientErrorResponse({ code: 'X', reason: 'r'.repeat(5000) }).body.error.message.length < 200, 'a reason is cut')
})

/** A stand-in socket that records what the handler does with it. */
function fakeSocket (opts: { writable?: boolean; destroyed?: boolean; inFlight?: boolean } = {}) {
  const s = new PassThrough()
  const written: string[] = []
  s.on('data', (d) => written.push(String(d)))
  if (opts.destroyed) s.destroy()
  if (opts.writable === false) Object.defineProperty(s, 'writable', { value: false })
  if (opts.inFlight) Object.assign(s, { _httpMessage: { headersSent: true } })
  return { s, written }
}

t.test('the handler: a timeout is a 408, a reset or an answer in progress gets nothing', async (t) => {
  const timeout = fakeSocket()
  qwenClientErrorHandler.call(undefined, Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), timeout.s)
  await new Promise((resolve) => timeout.s.once('close', resolve))
  const text = timeout.written.join('')
  t.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(text, /"code":"request_timeout"/)
  t.ok(timeout.s.destroyed, 'closed after the answer')

  const reset = fakeSocket()
  qwenClientErrorHandler.call(undefined, Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset.s)
  t.same(reset.written, [])
  t.notOk(reset.s.destroyed, 'a reset socket is left to Node')

  const gone = fakeSocket({ destroyed: true })
  qwenClientErrorHandler.call(undefined, new Error('x'), gone.s)
  t.same(gone.written, [])

  for (const opts of [{ writable: false }, { inFlight: true }]) {
    const f = fakeSocket(opts)
    qwenClientErrorHandler.call(undefined, Object.assign(new Error('bad'), { code: 'HPE_INVALID_METHOD' }), f.s)
    await new Promise((resolve) => setImmediate(resolve))
    t.same(f.written, [], `${JSON.stringify(opts)}: nothing is written`)
    t.ok(f.s.destroyed, `${JSON.stringify(opts)}: the connection is closed`)
  }
})
