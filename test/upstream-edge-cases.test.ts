/**
 * Upstream answers the simulator does not produce, served by a tiny scripted HTTP server: a whole
 * answer in one frame, and a captcha inside SSE framing answered to a near-limit body.
 */
import { createServer, type Server } from 'node:http'
import t from 'tap'
import { Agent } from 'undici'
import { UpstreamError } from '../src/errors.js'
import { outcomeOf } from '../src/turn/lease.js'
import { UpstreamClient } from '../src/upstream/client.js'

async function scripted (t: { teardown: (fn: () => unknown) => void }, sse: string): Promise<string> {
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(sse)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const addr = server.address()
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
}

function client (t: { teardown: (fn: () => unknown) => void }, url: string, bodyLimitBytes = 100_000): UpstreamClient {
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  return new UpstreamClient({ baseUrl: url, dispatcher, firstByteTimeoutMs: 2_000, idleTimeoutMs: 2_000, maxBufferBytes: 1 << 20, bodyLimitBytes })
}

const turn = (content: string) => ({ chatId: 'c1', model: 'qwen3-max', chatType: 't2t' as const, thinking: false, content, parentId: null })
const cred = { token: 'tok', cookie: 'token=tok' }

t.test('a whole answer in one frame that also says finished is an answer, not an empty one', async (t) => {
  const url = await scripted(t, [
    'data: {"response.created":{"chat_id":"c1","parent_id":null,"response_id":"r1"}}',
    'data: {"choices":[{"delta":{"role":"assistant","content":"Hi","phase":"answer","status":"finished"}}]}',
    '',
  ].join('\n\n'))
  const { stream, first } = await client(t, url).openCompletion(cred, turn('hello'))
  t.ok(first.length >= 2, 'committed on the frame that carries the text')
  stream.close()
})

t.test('a captcha in SSE framing answered to a near-limit body blames the body, not the account', async (t) => {
  const url = await scripted(t, 'data: {"ret":["FAIL_SYS_USER_VALIDATE","RGV587_ERROR::SM::x"],"data":{"url":"https://chat.qwen.ai//api/v2/chat/completions/_____tmd_____/punish?x5secdata=1"}}\n\n')
  const limit = 4000
  const c = client(t, url, limit)
  let err: unknown
  // The largest prompt the limit lets through: its body is within 50 bytes of the limit (> 90 %).
  for (let n = limit; n > 0; n -= 50) {
    try {
      await c.openCompletion(cred, turn('x'.repeat(n)))
      t.fail('a captcha is never a success')
      return
    } catch (e) {
      if ((e as { code?: string }).code === 'context_length_exceeded') continue
      err = e
      break
    }
  }
  t.ok(err instanceof UpstreamError)
  const u = err as UpstreamError
  t.equal(u.kind, 'challenge')
  t.equal(u.retryable, false, 'not failed over')
  t.same(outcomeOf(u), { kind: 'neutral' }, 'no account is put in cooldown')
  t.match(u.message, /too large/)

  // The same framed captcha to a small body is the account's challenge.
  try {
    await c.openCompletion(cred, turn('hi'))
  } catch (e) {
    t.equal((e as UpstreamError).kind, 'challenge')
    t.equal(outcomeOf(e).kind, 'challenge', 'a small body: the account was challenged')
  }
})

t.test('an empty answer is neutral for the account', async (t) => {
  t.same(outcomeOf(new UpstreamError('empty_answer', 'nothing')), { kind: 'neutral' })
})
