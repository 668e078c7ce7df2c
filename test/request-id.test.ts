/**
 * Request ids: the id in the log lines (`reqId`) is the one in the `x-request-id` response header, for
 * a safe caller id, an unsafe one and none; "request rejected" lines carry the error text once.
 */
import Fastify from 'fastify'
import t from 'tap'
import { requestIdFor } from '../plugins/request-id.js'
import qwenGateway, { buildServer } from '../src/index.js'
import { logSink, until, type LogLine } from './helpers/log-sink.js'
import { postJson, startSim } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })

t.test('standalone: log lines and the response header carry the same id', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const sink = logSink()
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie) }, { logger: { level: 'info', stream: sink.stream } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const cases: Array<[string, string | undefined, (id: string) => void]> = [
    ['a safe caller id', 'trace-abc.123:x_y', (id) => t.equal(id, 'trace-abc.123:x_y', 'the caller\'s id is kept')],
    ['an id with spaces', 'my trace id', (id) => t.match(id, /^req_[0-9a-f]{32}$/, 'replaced by a generated id')],
    ['a 300-character id', 'a'.repeat(300), (id) => t.match(id, /^req_[0-9a-f]{32}$/)],
    ['an id with a quote and braces', '"}{"reqId":"forged', (id) => t.match(id, /^req_[0-9a-f]{32}$/)],
    ['no id', undefined, (id) => t.match(id, /^req_[0-9a-f]{32}$/)],
  ]
  for (const [name, given, check] of cases) {
    const headers: Record<string, string> = given === undefined ? {} : { 'x-request-id': given }

    // Fastify's own request lines (GET /health is logged when it arrives and when it completes).
    let from = sink.raw.length
    const health = await fetch(`${base}/health`, { headers })
    t.equal(health.status, 200)
    const hid = health.headers.get('x-request-id')!
    check(hid)
    await until(() => sink.lines().slice(from).some((l) => l.msg === 'request completed'))
    const healthLines = sink.lines().slice(from).filter((l) => l.reqId !== undefined)
    t.same(healthLines.map((l) => l.msg), ['incoming request', 'request completed'], `${name}: both request lines`)
    t.ok(healthLines.every((l) => l.reqId === hid), `${name}: every log line has reqId ${hid}`)
    if (given !== undefined && given !== hid) t.notOk(sink.raw.slice(from).some((l) => l.includes(given)), `${name}: the raw id is not logged`)

    // A refused completion: one "request rejected" line with the error text under `error`.
    from = sink.raw.length
    const bad = await postJson(`${base}/v1/chat/completions`, body({ temperature: 'hot' }), headers)
    t.equal(bad.status, 400)
    const bid = bad.headers.get('x-request-id')!
    check(bid)
    const message = ((await bad.json()) as { error: { message: string } }).error.message
    await until(() => sink.lines().slice(from).some((l) => l.msg === 'request rejected'))
    const rawRejected = sink.raw.slice(from).find((l) => l.includes('request rejected'))!
    t.equal(rawRejected.match(/"msg":/g)?.length, 1, `${name}: one msg key`)
    const rejected = JSON.parse(rawRejected) as LogLine
    t.equal(rejected.reqId, bid, `${name}: the rejection line has the response's id`)
    t.same([rejected.status, rejected.code, rejected.param, rejected.error], [400, 'invalid_type', 'temperature', message], `${name}: the error text is logged`)

    // A completion's access-log line.
    from = sink.raw.length
    const ok = await postJson(`${base}/v1/chat/completions`, body(), headers)
    t.equal(ok.status, 200)
    await ok.text()
    const oid = ok.headers.get('x-request-id')!
    check(oid)
    await until(() => sink.lines().slice(from).some((l) => l.msg === 'completion'))
    t.equal(sink.lines().slice(from).find((l) => l.msg === 'completion')!.reqId, oid, `${name}: the completion line has the response's id`)
  }
})

t.test('requestIdFor: safe tokens only', async (t) => {
  t.equal(requestIdFor({ headers: { 'x-request-id': 'abc-1' } }), 'abc-1')
  t.equal(requestIdFor({ headers: { 'x-request-id': 'x'.repeat(128) } }), 'x'.repeat(128))
  t.match(requestIdFor({ headers: { 'x-request-id': 'x'.repeat(129) } }), /^req_[0-9a-f]{32}$/)
  t.match(requestIdFor({ headers: { 'x-request-id': ['a', 'b'] as unknown as string } }), /^req_/)
  t.match(requestIdFor({ headers: { 'x-request-id': '' } }), /^req_/)
  t.match(requestIdFor({ headers: {} }), /^req_/)
  t.not(requestIdFor({ headers: {} }), requestIdFor({ headers: {} }), 'generated ids differ')
})

t.test('embedded: the host\'s reqId is echoed; a caller\'s own id is bound to the gateway\'s log lines', async (t) => {
  const sink = logSink()
  const host = Fastify({ logger: { level: 'info', stream: sink.stream } })
  await host.register(qwenGateway, { prefix: '/qwen', cookies: [] })
  t.teardown(() => host.close())

  let from = sink.raw.length
  const noId = await host.inject({ method: 'POST', url: '/qwen/v1/chat/completions', payload: body({ stream: 'yes' }) })
  t.equal(noId.statusCode, 400)
  const hostId = noId.headers['x-request-id'] as string
  const line = sink.lines().slice(from).find((l) => l.msg === 'request rejected')!
  t.equal(line.reqId, hostId, 'without a caller id the host\'s request id is echoed')
  t.equal(line.requestId, undefined)

  from = sink.raw.length
  const withId = await host.inject({ method: 'POST', url: '/qwen/v1/chat/completions', payload: body({ stream: 'yes' }), headers: { 'x-request-id': 'caller-7' } })
  t.equal(withId.headers['x-request-id'], 'caller-7')
  const bound = sink.lines().slice(from).find((l) => l.msg === 'request rejected')!
  t.not(bound.reqId, 'caller-7', 'the host decides reqId')
  t.equal(bound.requestId, 'caller-7', 'the echoed id is on the gateway\'s own log lines')
})

t.test('embedded with genReqId: requestIdFor, one id everywhere', async (t) => {
  const sink = logSink()
  const host = Fastify({ logger: { level: 'info', stream: sink.stream }, requestIdHeader: false, genReqId: requestIdFor })
  await host.register(qwenGateway, { prefix: '/qwen', cookies: [] })
  t.teardown(() => host.close())
  for (const given of ['caller-8', 'not safe!']) {
    const from = sink.raw.length
    const res = await host.inject({ method: 'POST', url: '/qwen/v1/chat/completions', payload: body({ stream: 'yes' }), headers: { 'x-request-id': given } })
    const id = res.headers['x-request-id'] as string
    const lines = sink.lines().slice(from).filter((l) => l.reqId !== undefined)
    t.ok(lines.length > 0)
    t.ok(lines.every((l) => l.reqId === id && l.requestId === undefined), `${given}: reqId ${id} on every line`)
  }
})
