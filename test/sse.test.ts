import t from 'tap'
import { SseLineTooLongError, SseParser } from '../src/sse.js'

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

t.test('refuses a line longer than the cap', async (t) => {
  const p = new SseParser(() => {}, 16)
  t.throws(() => p.push(Buffer.from('data: ' + 'x'.repeat(32))), SseLineTooLongError)
})
