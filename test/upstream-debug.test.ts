/** DEBUG_MODE: upstream calls and frames at debug level, redacted and truncated; nothing formatted when off. */
import { Writable } from 'node:stream'
import t from 'tap'
import { Agent } from 'undici'
import { buildServer } from '../src/index.js'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import { UpstreamClient, type UpstreamLogger } from '../src/upstream/client.js'
import { LOG_TEXT_MAX, redactForLog } from '../src/upstream/protocol.js'

const dispatcher = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 })
t.teardown(() => dispatcher.close())

interface Line { obj: Record<string, unknown>; msg: string | undefined }

function capture (enabled: boolean): UpstreamLogger & { lines: Line[]; checks: number } {
  const l = {
    lines: [] as Line[],
    checks: 0,
    debug (obj: object, msg?: string) {
      if (!enabled) throw new Error('debug() called while debug is off')
      l.lines.push({ obj: obj as Record<string, unknown>, msg })
    },
    isLevelEnabled (level: string) {
      l.checks++
      return enabled && level === 'debug'
    },
  }
  return l
}

async function sim (t: { teardown (fn: () => unknown): void }, frameChars?: number): Promise<Simulator> {
  const s = await startSimulator({ demoAccounts: 1, ...(frameChars ? { frameChars } : {}) })
  t.teardown(() => s.close())
  return s
}

function client (s: Simulator, logger?: UpstreamLogger): UpstreamClient {
  return new UpstreamClient({ baseUrl: s.url, dispatcher, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxBufferBytes: 1024 * 1024, ...(logger ? { logger } : {}) })
}

/** One whole turn: token, chat, completion stream read to its end. */
async function turn (c: UpstreamClient, s: Simulator): Promise<{ token: string; frames: number }> {
  const { token } = await c.fetchToken(s.accounts[0]!.cookie, { requestId: 'req-1' })
  const chatId = await c.createChat({ token }, 'qwen3-max', 't2t', { requestId: 'req-1' })
  const { stream, first } = await c.openCompletion({ token }, { chatId, model: 'qwen3-max', chatType: 't2t', thinking: true, content: 'hi', parentId: null }, { requestId: 'req-1' })
  let frames = first.length
  for (let b = await stream.next(); b; b = await stream.next()) frames += b.length
  stream.close()
  return { token, frames }
}

t.test('redactForLog', async (t) => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjEyMyJ9.c2lnbmF0dXJl'
  const rows: Array<[string, string, string]> = [
    ['a JWT anywhere', `{"x":"Bearer ${jwt}"}`, '{"x":"Bearer [redacted]"}'],
    ['token fields', '{"token":"abc","access_token":"d\\"ef","name":"n"}', '{"token":"[redacted]","access_token":"[redacted]","name":"n"}'],
    ['passwords and cookies', '{"email":"a@b","password":"5e88", "cookie" : "token=x; y=z"}', '{"email":"a@b","password":"[redacted]", "cookie":"[redacted]"}'],
    ['signed URL parameters', '{"content":"https://cdn/x.png?key=abc.def&w=1&Signature=xyz"}', '{"content":"https://cdn/x.png?key=[redacted]&w=1&Signature=[redacted]"}'],
    ['ordinary text stays', '{"choices":[{"delta":{"content":"Hello, world"}}]}', '{"choices":[{"delta":{"content":"Hello, world"}}]}'],
  ]
  for (const [name, input, want] of rows) t.equal(redactForLog(input), want, name)
  const long = redactForLog('a'.repeat(1000))
  t.equal(long, `${'a'.repeat(LOG_TEXT_MAX)}… (${1000 - LOG_TEXT_MAX} more characters)`)
  const late = redactForLog(`${'a'.repeat(LOG_TEXT_MAX - 10)}"token":"${'s'.repeat(50)}"`)
  t.notMatch(late, /sss/, 'a secret across the cut is redacted before the cut, never shown in part')
})

t.test('at debug level: each call, its bodies and every frame, with no secret in any line', async (t) => {
  const s = await sim(t)
  const log = capture(true)
  const { token, frames } = await turn(client(s, log), s)
  const msgs = log.lines.map((l) => l.msg)
  t.same(msgs.slice(0, 3), ['upstream request', 'upstream response', 'upstream body'], 'the token call')
  const frameLines = log.lines.filter((l) => l.msg === 'upstream frame')
  t.equal(frameLines.length, frames, 'one line per frame')
  t.match(frameLines[0]!.obj.frame, /response\.created/)
  t.ok(log.lines.every((l) => l.obj.requestId === 'req-1'), 'every line carries the request id')
  const request = log.lines.find((l) => l.msg === 'upstream request' && String(l.obj.path).includes('completions'))!
  t.match(request.obj.body, /"chat_id"/, 'the completion body is logged (its start: the texts are cut at 300 characters)')
  const all = JSON.stringify(log.lines)
  t.notOk(all.includes(token), 'the token never appears')
  t.notOk(all.includes(s.accounts[0]!.cookie.split(';')[1]!.trim()), 'nor any part of the cookie')
  t.match(all, /"token\\":\\"\[redacted\]/, 'the session answer is logged with its token redacted')
  t.equal(log.checks, 3, 'the level is checked once per upstream call (auths, chats/new, completions), never per frame')
})

t.test('long frames are truncated', async (t) => {
  const s = await sim(t, 5000)
  s.queue(s.accounts[0]!.email, { answer: 'x'.repeat(2000) })
  const log = capture(true)
  await turn(client(s, log), s)
  const frame = log.lines.map((l) => String(l.obj.frame ?? '')).find((f) => f.includes('xxxx'))!
  t.ok(frame.length < LOG_TEXT_MAX + 40, `frame line is cut (${frame.length} chars)`)
  t.match(frame, /more characters\)$/)
})

t.test('debug off: nothing is logged or formatted', async (t) => {
  const s = await sim(t)
  const off = capture(false)
  await turn(client(s, off), s)
  t.equal(off.lines.length, 0)
  t.ok(off.checks > 0, 'the level was asked')
  let calls = 0
  const noop = { debug () { calls++ } } // Fastify's no-op logger has neither isLevelEnabled nor level
  await turn(client(s, noop), s)
  t.equal(calls, 0, 'a logger that cannot say its level is treated as off')
  const byLevel = { level: 'debug', debug () { calls++ } }
  await turn(client(s, byLevel), s)
  t.ok(calls > 0, 'without isLevelEnabled, level decides')
})

t.test('the gateway passes its logger: DEBUG_MODE shows upstream frames, info does not', async (t) => {
  for (const debugMode of [true, false]) {
    const s = await sim(t)
    let out = ''
    const stream = new Writable({ write (chunk, _enc, cb) { out += String(chunk); cb() } })
    const app = await buildServer({ qwenBaseUrl: s.url, cookies: s.accounts.map((a) => a.cookie), debugMode }, { logger: { stream } })
    t.teardown(() => app.close())
    await app.ready()
    await app.qwenTokens.ready()
    const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] } })
    t.equal(res.statusCode, 200)
    const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg?: string; frame?: string; level: number })
    const frames = lines.filter((l) => l.msg === 'upstream frame')
    if (debugMode) {
      t.ok(frames.length > 2, 'frames logged')
      t.ok(frames.every((l) => l.level === 20), 'at debug level')
      const token = (await (await fetch(`${s.url}/api/v1/auths/`, { headers: { cookie: s.accounts[0]!.cookie } })).json() as { token: string }).token
      t.notOk(out.includes(token.split('.')[2]!), 'no token signature in the log')
      t.notOk(out.includes(s.accounts[0]!.cookie.split(';')[1]!.trim()), 'no cookie in the log')
    } else {
      t.equal(frames.length, 0)
      t.notOk(out.includes('upstream request'), 'no upstream call lines either')
    }
    await app.close()
  }
})
