import t, { type Test } from 'tap'
import { UpstreamError } from '../src/errors.js'
import { SseParser } from '../src/sse.js'

function parseAll (chunks: Buffer[]): string[] {
  const out: string[] = []
  const p = new SseParser((d) => out.push(d))
  for (const c of chunks) p.push(c)
  p.end()
  return out
}

const STREAM = [
  'data: {"response.created":{"chat_id":"c","response_id":"r"}}\n\n',
  ': a comment line\n\n',
  'data: {"choices":[{"delta":{"content":"你好，世界 👋","phase":"answer"}}]}\n\n',
  'event: ignored\nid: 7\ndata: {"a":1}\r\n\r\n',
  'data:{"no":"space"}\n\n',
  'data: line one\ndata: line two\n\n',
  'data: [DONE]\n\n',
].join('')
const EXPECTED = [
  '{"response.created":{"chat_id":"c","response_id":"r"}}',
  '{"choices":[{"delta":{"content":"你好，世界 👋","phase":"answer"}}]}',
  '{"a":1}',
  '{"no":"space"}',
  'line one\nline two',
  '[DONE]',
]

t.test('parses a whole stream in one chunk', async (t) => {
  t.same(parseAll([Buffer.from(STREAM)]), EXPECTED)
})

t.test('gives the same events when the stream is split at every byte boundary', async (t) => {
  const bytes = Buffer.from(STREAM)
  for (let i = 1; i < bytes.length; i++) {
    const got = parseAll([bytes.subarray(0, i), bytes.subarray(i)])
    if (JSON.stringify(got) !== JSON.stringify(EXPECTED)) {
      t.fail(`split at byte ${i} gave ${JSON.stringify(got)}`)
      return
    }
  }
  t.pass('every two-way split parsed identically')
})

t.test('gives the same events when fed one byte at a time (multi-byte characters split)', async (t) => {
  const bytes = Buffer.from(STREAM)
  const chunks = Array.from(bytes, (b) => Buffer.from([b]))
  t.same(parseAll(chunks), EXPECTED)
})

t.test('dispatches a last event that has no trailing blank line', async (t) => {
  t.same(parseAll([Buffer.from('data: {"x":1}\n\ndata: {"y":2}')]), ['{"x":1}', '{"y":2}'])
})

t.test('counts dispatched events', async (t) => {
  const p = new SseParser(() => {})
  p.push(Buffer.from('data: 1\n\ndata: 2\n\n: only a comment\n\n'))
  t.equal(p.events, 2)
})

function limitError (t: Test, fn: () => void, what: RegExp): void {
  try {
    fn()
    t.fail('no error thrown')
  } catch (err) {
    t.ok(err instanceof UpstreamError, 'an UpstreamError')
    const e = err as UpstreamError
    t.equal(e.kind, 'limit')
    t.equal(e.statusCode, 502)
    t.equal(e.code, 'upstream_response_too_large')
    t.equal(e.retryable, false)
    t.match(e.message, what)
  }
}

t.test('refuses a line longer than the cap', async (t) => {
  const p = new SseParser(() => {}, 16)
  limitError(t, () => p.push(Buffer.from('data: ' + 'x'.repeat(32))), /SSE line exceeded 16 bytes/)
})

t.test('refuses an event whose data lines add up to more than the cap (no blank line ever comes)', async (t) => {
  const got: string[] = []
  const p = new SseParser((d) => got.push(d), 64)
  // Short lines, each far below the cap: only the event as a whole is too large.
  limitError(t, () => {
    for (let i = 0; i < 100; i++) p.push(Buffer.from('data: 0123456789\n'))
  }, /SSE event exceeded 64 bytes/)
  t.same(got, [], 'nothing was dispatched')
})

t.test('the event cap counts an unfinished line together with the data already held', async (t) => {
  const p = new SseParser(() => {}, 32)
  p.push(Buffer.from('data: 0123456789012345678\n')) // 19 bytes of data held
  limitError(t, () => p.push(Buffer.from('data: 0123456789')), /SSE event exceeded 32 bytes/)
})

t.test('events at the cap pass, and the budget starts again with every event', async (t) => {
  const got: string[] = []
  const p = new SseParser((d) => got.push(d), 21)
  // Two lines of 10 bytes joined by "\n": exactly 21 bytes of event data.
  for (let i = 0; i < 50; i++) p.push(Buffer.from('data: 0123456789\ndata: abcdefghij\n\n'))
  p.end()
  t.equal(got.length, 50)
  t.equal(got[0], '0123456789\nabcdefghij')
})

t.test('comments and other fields between data lines are never held', async (t) => {
  const got: string[] = []
  const p = new SseParser((d) => got.push(d), 32)
  for (let i = 0; i < 100; i++) p.push(Buffer.from(': keep-alive\nevent: x\n'))
  p.push(Buffer.from('data: ok\n\n'))
  t.same(got, ['ok'])
})

t.test('a bare JSON line without SSE framing is an event of its own (the 2026 captcha inside a stream)', async (t) => {
  const got: string[] = []
  const p = new SseParser((d) => got.push(d), 1024)
  p.push(Buffer.from('data: {"a":1}\n\n{"ret":["FAIL_SYS_USER_VALIDATE"],"data":{"url":"https://x/punish?y"}}\r\ndata: {"b":2}\n\n'))
  p.end()
  t.same(got, ['{"a":1}', '{"ret":["FAIL_SYS_USER_VALIDATE"],"data":{"url":"https://x/punish?y"}}', '{"b":2}'])
  const { CompletionTransformer } = await import('../src/openai/transform.js')
  const tr = new CompletionTransformer({ thinkingOutput: 'reasoning_content', stop: [] } as any)
  t.throws(() => tr.push(JSON.parse(got[1]!)), { kind: 'challenge', code: 'upstream_challenge' }, 'and it is classified as the challenge it is, not dropped')
})
