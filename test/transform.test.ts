import t from 'tap'
import { UpstreamError } from '../src/errors.js'
import { CompletionTransformer, TokenCounter, estimateTokens, type TransformOptions } from '../src/openai/transform.js'
import type { Frame } from '../src/upstream/protocol.js'

const created: Frame = { 'response.created': { chat_id: 'c1', parent_id: 'p1', response_id: 'r1' } }
const think = (content: string, status = 'typing'): Frame => ({ choices: [{ delta: { role: 'assistant', content, phase: 'think', status } }], response_id: 'r1' })
const answer = (content: string, status = 'typing'): Frame => ({ choices: [{ delta: { role: 'assistant', content, phase: 'answer', status } }], response_id: 'r1' })
const finished: Frame = { choices: [{ delta: { role: 'assistant', content: '', phase: 'answer', status: 'finished' } }], response_id: 'r1', usage: { input_tokens: 11, output_tokens: 9, output_tokens_details: { reasoning_tokens: 4 } } }

function run (frames: Frame[], opts: Partial<TransformOptions> = {}) {
  const tr = new CompletionTransformer({ thinkingOutput: 'reasoning_content', stop: [], maxTokens: undefined, ...opts })
  for (const f of frames) tr.push(f)
  const content = tr.events.filter((e) => e.kind === 'content').map((e) => e.text).join('')
  const reasoning = tr.events.filter((e) => e.kind === 'reasoning').map((e) => e.text).join('')
  return { tr, content, reasoning }
}

t.test('reasoning and answer go to separate channels; usage comes from the last frame', async (t) => {
  const { tr, content, reasoning } = run([created, think('Let me '), think('think.', 'finished'), answer('Hel'), answer('lo'), finished])
  t.equal(reasoning, 'Let me think.')
  t.equal(content, 'Hello')
  t.equal(tr.finishReason, 'stop')
  t.equal(tr.responseId, 'r1')
  t.same(tr.usageFor('prompt'), { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 4 } })
  const kinds = tr.events.map((e) => e.kind)
  t.ok(kinds.lastIndexOf('reasoning') < kinds.indexOf('content'), 'all reasoning comes before content')
})

t.test('think_tags wraps reasoning into content; hidden drops it', async (t) => {
  t.equal(run([created, think('hmm'), answer('Hi'), finished], { thinkingOutput: 'think_tags' }).content, '<think>\nhmm\n</think>\n\nHi')
  const hidden = run([created, think('hmm'), answer('Hi'), finished], { thinkingOutput: 'hidden' })
  t.equal(hidden.content, 'Hi')
  t.equal(hidden.reasoning, '')
})

t.test('2026-style thinking_summary frames carry cumulative arrays', async (t) => {
  const summary = (parts: string[], status = 'typing'): Frame => ({ choices: [{ delta: { content: '', phase: 'thinking_summary', status, extra: { summary_thought: { content: parts } } } }] })
  const { reasoning, content } = run([created, summary(['First']), summary(['First', 'Second']), summary(['First', 'Second'], 'finished'), answer('Done'), finished])
  t.equal(reasoning, 'First\nSecond')
  t.equal(content, 'Done')
})

t.test('search results and function frames never reach content', async (t) => {
  const search: Frame = { choices: [{ delta: { role: 'assistant', content: '', name: 'web_search', phase: 'web_search', status: 'finished', extra: { web_search_info: [{ url: 'https://a', title: 'A' }] } } }] }
  const fn: Frame = { choices: [{ delta: { role: 'function', content: 'Tool x does not exists', phase: 'answer' } }] }
  const { tr, content } = run([created, search, fn, answer('See [[1]]'), finished])
  t.equal(content, 'See [[1]]')
  t.equal(tr.searchResults.length, 1)
})

t.test('frames of a second interleaved candidate answer are ignored', async (t) => {
  const other = (c: string): Frame => ({ choices: [{ delta: { content: c, phase: 'answer', status: 'typing' } }], response_id: 'r2' })
  const { content } = run([created, { 'response.created': { chat_id: 'c1', parent_id: 'p1', response_id: 'r2', response_index: '1' } }, answer('A'), other('X'), answer('B'), other('Y'), finished])
  t.equal(content, 'AB')
})

t.test('an error frame throws an UpstreamError', async (t) => {
  const tr = new CompletionTransformer({ thinkingOutput: 'reasoning_content', stop: [], maxTokens: undefined })
  tr.push(created)
  t.throws(() => tr.push({ error: { code: 'internal_error', details: 'Internal error!' } }), UpstreamError)
  t.throws(() => tr.push({ success: false, data: { code: 'RateLimited', details: 'limit' } }), UpstreamError)
})

t.test('stop sequences cut the output, also when split across frames', async (t) => {
  const r = run([created, answer('Hello wo'), answer('rld EN'), answer('D more'), finished], { stop: ['END'] })
  t.equal(r.content, 'Hello world ')
  t.equal(r.tr.finishReason, 'stop')
  t.ok(r.tr.ended)
  const held = run([created, answer('ends with E'), finished], { stop: ['END'] })
  t.equal(held.content, 'ends with E', 'a held-back partial match is released at the end')
  const first = run([created, answer('a STOP b HALT c'), finished], { stop: ['HALT', 'STOP'] })
  t.equal(first.content, 'a ', 'the earliest stop sequence wins')
})

t.test('max_tokens cuts the output and finishes with length', async (t) => {
  const r = run([created, answer('abcdefgh'), answer('ijklmnop'), finished], { maxTokens: 3 })
  t.equal(r.content, 'abcdefghijkl')
  t.equal(r.tr.finishReason, 'length')
  t.equal(r.tr.usageFor('p').completion_tokens, 3)
  const cjk = run([created, answer('你好世界'), finished], { maxTokens: 2 })
  t.equal(cjk.content, '你好')
  const tags = run([created, think('abcdefgh'), answer('x'), finished], { maxTokens: 1, thinkingOutput: 'think_tags' })
  t.equal(tags.content, '<think>\nabcd\n</think>\n\n', 'reasoning counts toward the limit and tags are closed')
})

t.test('usage is estimated when the upstream sends none', async (t) => {
  const r = run([created, answer('abcdefgh'), { choices: [{ delta: { content: '', phase: 'answer', status: 'finished' } }] }])
  t.same(r.tr.usageFor('12345678'), { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } })
})

t.test('token estimate', async (t) => {
  t.equal(estimateTokens(''), 0)
  t.equal(estimateTokens('abcd'), 1)
  t.equal(estimateTokens('abcde'), 2)
  t.equal(estimateTokens('你好'), 2)
  t.equal(estimateTokens('👋'), 1, 'a surrogate pair is one narrow character')
  const c = new TokenCounter()
  t.equal(c.fit('👋👋👋👋👋', 1), '👋👋👋👋', 'never splits a surrogate pair')
})

t.test('without response.created, the first response_id seen is the answer', async (t) => {
  const f = (id: string, c: string, status = 'typing'): Frame => ({ choices: [{ delta: { content: c, phase: 'answer', status } }], response_id: id })
  const { content, tr } = run([f('A', 'Hel'), f('B', 'Bon'), f('A', 'lo'), f('B', 'jour', 'finished'), f('A', '', 'finished')])
  t.equal(content, 'Hello')
  t.equal(tr.responseId, 'A')
  t.equal(tr.upstreamFinished, true)
})

t.test('reasoning tokens are estimated too when the upstream sends no usage', async (t) => {
  const { tr } = run([created, { choices: [{ delta: { content: 'abcdefgh', phase: 'think' } }] }, { choices: [{ delta: { content: 'abcd', phase: 'answer', status: 'finished' } }] }])
  const u = tr.usageFor('p')
  t.equal(u.completion_tokens, 3)
  t.equal(u.completion_tokens_details.reasoning_tokens, 2)
})

t.test('only the upstream finished frame (or a cut) ends the answer', async (t) => {
  const { tr, content } = run([created, answer('abc')])
  t.equal(content, 'abc')
  t.equal(tr.ended, false)
  t.equal(tr.finishReason, null)
  t.equal(tr.upstreamFinished, false)
})

t.test('think_tags with max_tokens: one <think> block, closed once, whichever piece the cut falls in', async (t) => {
  const opts = { maxTokens: 3, thinkingOutput: 'think_tags' as const }
  // The cut falls in the second reasoning piece, while the block is already open.
  const second = run([created, think('abcd'), think('efghijklmnop'), answer('x'), finished], opts)
  t.equal(second.content, '<think>\nabcdefghijkl\n</think>\n\n')
  t.equal(second.tr.finishReason, 'length')
  // The cut leaves nothing of the piece that crosses the limit.
  const exact = run([created, think('abcdefgh'), think('ijkl'), think('mnop'), answer('x'), finished], opts)
  t.equal(exact.content, '<think>\nabcdefghijkl\n</think>\n\n')
  const none = run([created, think('abcdefghijkl'), think('m'), answer('x'), finished], opts)
  t.equal(none.content, '<think>\nabcdefghijkl\n</think>\n\n')
  for (const r of [second, exact, none]) {
    t.equal(r.content.split('<think>').length, 2, 'exactly one opening tag')
    t.equal(r.content.split('</think>').length, 2, 'exactly one closing tag')
  }
})
