/**
 * Search citations: `-search` answers carry `url_citation` annotations into the final content, on the
 * non-stream message and in the delta of the stream's finish chunk (never the usage chunk), typed as
 * the `openai` SDK types them.
 */
import OpenAI from 'openai'
import t from 'tap'
import type { ChatCompletionMessage } from 'openai/resources/chat/completions'
import { urlCitations } from '../src/openai/citations.js'
import { harness, type Harness } from './helpers/setup.js'

function client (h: Harness): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 20_000 })
}

/** Each annotation's span, sliced by code points, is the `[[n]]` marker it stands for. */
function spans (content: string, annotations: ChatCompletionMessage.Annotation[]): string[] {
  const cps = Array.from(content)
  return annotations.map((a) => cps.slice(a.url_citation.start_index, a.url_citation.end_index).join(''))
}

t.test('non-stream: one url_citation per [[n]] marker, the text unchanged', async (t) => {
  const h = await harness(t)
  const r = await client(h).chat.completions.create({ model: 'qwen3-max-search', messages: [{ role: 'user', content: 'fastify 5' }] })
  const m = r.choices[0]!.message
  const annotations: ChatCompletionMessage.Annotation[] = m.annotations!
  t.equal(annotations.length, 2)
  t.same(spans(m.content!, annotations), ['[[1]]', '[[2]]'])
  t.match(annotations[0]!, { type: 'url_citation', url_citation: { url: /^https:\/\/en\.wikipedia\.org\/.*fastify%205$/, title: 'fastify 5 - Wikipedia' } })
  t.match(annotations[1]!.url_citation, { url: /^https:\/\/www\.zhihu\.com\//, title: '如何看待 fastify 5？' })
  t.notMatch(m.content, /https?:\/\//, 'no URLs in the text')
})

t.test('stream: the annotations ride in the finish chunk, not in the usage chunk', async (t) => {
  const h = await harness(t)
  const stream = await client(h).chat.completions.create({
    model: 'qwen3-max-search', messages: [{ role: 'user', content: 'fastify 5' }], stream: true, stream_options: { include_usage: true },
  })
  let content = ''
  const withAnnotations: Array<{ finish: string | null; annotations: ChatCompletionMessage.Annotation[] }> = []
  let usageChunks = 0
  for await (const chunk of stream) {
    if (chunk.choices.length === 0) {
      usageChunks++
      t.notOk(JSON.stringify(chunk).includes('annotations'), 'nothing in the usage chunk')
      continue
    }
    const c = chunk.choices[0]!
    content += c.delta.content ?? ''
    const a = (c.delta as { annotations?: ChatCompletionMessage.Annotation[] }).annotations
    if (a) withAnnotations.push({ finish: c.finish_reason, annotations: a })
  }
  t.equal(usageChunks, 1)
  t.equal(withAnnotations.length, 1)
  t.equal(withAnnotations[0]!.finish, 'stop')
  t.same(spans(content, withAnnotations[0]!.annotations), ['[[1]]', '[[2]]'])
})

t.test('models without search carry no annotations', async (t) => {
  const h = await harness(t)
  const r = await client(h).chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(r.choices[0]!.message.annotations, undefined)
  const raw = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], stream: true }) })
  t.notOk((await raw.text()).includes('annotations'))
})

t.test('urlCitations: code-point indices, unknown markers skipped, uncited sources span the whole answer', async (t) => {
  const sources = [{ url: 'https://a', title: 'A' }, { url: 'https://b', title: 'B' }]
  const text = '🚀中 [[2]] x [[9]] [[1]]'
  // The gateway's shape is the SDK's (a type error here would fail the type check).
  const a: ChatCompletionMessage.Annotation[] = urlCitations(text, sources)
  t.same(a.map((x) => [x.url_citation.url, x.url_citation.start_index, x.url_citation.end_index]), [['https://b', 3, 8], ['https://a', 17, 22]])
  t.same(urlCitations('no markers 🚀', sources).map((x) => [x.url_citation.title, x.url_citation.start_index, x.url_citation.end_index]), [['A', 0, 12], ['B', 0, 12]])
  t.same(urlCitations('[[1]]', []), [])
})
