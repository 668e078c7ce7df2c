/** Table-driven tests of the turn pipeline's decoder and stages (src/pipeline/). */
import t, { type Test } from 'tap'
import { UpstreamError } from '../src/errors.js'
import {
  FrameDecoder, HiddenReasoning, MaxTokensCut, Pipeline, StopSequenceCut, THINK_CLOSE, THINK_OPEN, ThinkTags,
  UsageAccounting, reasoningPresentation, textPipeline, type Stage, type TurnEvent,
} from '../src/pipeline/index.js'
import type { Frame } from '../src/upstream/protocol.js'

const c = (text: string): TurnEvent => ({ kind: 'content', text })
const r = (text: string): TurnEvent => ({ kind: 'reasoning', text })
const ANSWER: TurnEvent = { kind: 'phase', phase: 'answer' }
const UP: TurnEvent = { kind: 'finish', reason: 'stop', upstream: true }
const STOP: TurnEvent = { kind: 'finish', reason: 'stop', upstream: false }
/** A cut by the stop sequence `s` (the finish event names it, for Anthropic's `stop_sequence`). */
const cutBy = (s: string): TurnEvent => ({ kind: 'finish', reason: 'stop', upstream: false, stopSequence: s })
const LENGTH: TurnEvent = { kind: 'finish', reason: 'length', upstream: false }
const usage = (output: number): TurnEvent => ({ kind: 'usage', usage: { input: 1, output } })
const search: TurnEvent = { kind: 'search', results: [{ url: 'https://a' }] }

/** Each input's output, one array per push, then the flush. */
function drive (stage: Stage, input: TurnEvent[]): { pushes: TurnEvent[][]; flushed: TurnEvent[]; all: TurnEvent[] } {
  const pushes = input.map((e) => stage.push(e))
  const flushed = stage.flush()
  return { pushes, flushed, all: [...pushes.flat(), ...flushed] }
}

interface Row { name: string; stage: () => Stage; input: TurnEvent[]; pushes?: TurnEvent[][]; all?: TurnEvent[] }

function table (t: Test, rows: Row[]): void {
  for (const row of rows) {
    const got = drive(row.stage(), row.input)
    if (row.pushes) t.same(got.pushes, row.pushes, `${row.name}: output per push`)
    if (row.all) t.same(got.all, row.all, `${row.name}: whole output`)
  }
}

t.test('StopSequenceCut', async (t) => {
  table(t, [
    { name: 'no match passes content through', stage: () => new StopSequenceCut(['END']), input: [c('abc'), UP], pushes: [[c('abc')], [UP]] },
    { name: 'cut inside one piece', stage: () => new StopSequenceCut(['END']), input: [c('abENDcd'), c('more'), UP], pushes: [[c('ab'), cutBy('END')], [], []] },
    { name: 'cut across pieces: the partial match is held', stage: () => new StopSequenceCut(['END']), input: [c('abE'), c('NDcd'), UP], pushes: [[c('ab')], [cutBy('END')], []] },
    { name: 'a held partial match is released when it cannot match', stage: () => new StopSequenceCut(['END']), input: [c('abE'), c('x')], pushes: [[c('ab')], [c('Ex')]] },
    { name: 'a held partial match is released before the upstream finish', stage: () => new StopSequenceCut(['END']), input: [c('abEN'), UP], pushes: [[c('ab')], [c('EN'), UP]] },
    { name: 'flush releases what is held', stage: () => new StopSequenceCut(['END']), input: [c('abEN')], all: [c('ab'), c('EN')] },
    { name: 'cut at the very start emits no empty content', stage: () => new StopSequenceCut(['END']), input: [c('END')], pushes: [[cutBy('END')]] },
    { name: 'the earliest of several wins', stage: () => new StopSequenceCut(['HALT', 'STOP']), input: [c('a STOP b HALT')], pushes: [[c('a '), cutBy('STOP')]] },
    { name: 'reasoning, search and usage are never cut or held', stage: () => new StopSequenceCut(['END']), input: [r('END'), search, usage(3), ANSWER], pushes: [[r('END')], [search], [usage(3)], [ANSWER]] },
    { name: 'empty stop strings are ignored', stage: () => new StopSequenceCut(['']), input: [c('abc'), UP], pushes: [[c('abc')], [UP]] },
    { name: 'nothing passes after a finish', stage: () => new StopSequenceCut(['END']), input: [UP, c('late'), r('late')], pushes: [[UP], [], []] },
  ])
})

t.test('StopSequenceCut: a stop split over three pieces', async (t) => {
  const s = new StopSequenceCut(['END'])
  t.same(s.push(c('abE')), [c('ab')])
  t.same(s.push(c('N')), [])
  t.same(s.push(c('Dcd')), [cutBy('END')])
  t.same(s.push(UP), [])
})

t.test('MaxTokensCut', async (t) => {
  table(t, [
    { name: 'under the limit passes through', stage: () => new MaxTokensCut(3), input: [c('abcd'), UP], pushes: [[c('abcd')], [UP]] },
    { name: 'cut inside a piece', stage: () => new MaxTokensCut(3), input: [c('abcdefgh'), c('ijklmnop'), UP], pushes: [[c('abcdefgh')], [c('ijkl'), LENGTH], []] },
    { name: 'reasoning counts toward the limit', stage: () => new MaxTokensCut(1), input: [r('abcdefgh'), c('x')], pushes: [[r('abcd'), LENGTH], []] },
    { name: 'a piece with nothing left emits only the finish', stage: () => new MaxTokensCut(1), input: [c('abcd'), c('e')], pushes: [[c('abcd')], [LENGTH]] },
    { name: 'wide characters count one each', stage: () => new MaxTokensCut(2), input: [c('你好世界')], pushes: [[c('你好'), LENGTH]] },
    { name: 'other kinds are not counted', stage: () => new MaxTokensCut(1), input: [search, usage(100), ANSWER, c('abcd')], pushes: [[search], [usage(100)], [ANSWER], [c('abcd')]] },
    { name: 'nothing passes after a finish', stage: () => new MaxTokensCut(5), input: [UP, c('x')], pushes: [[UP], []] },
  ])
})

t.test('reasoning presentation', async (t) => {
  table(t, [
    { name: 'think_tags: one block around a run of reasoning', stage: () => new ThinkTags(), input: [r('a'), r('b'), ANSWER, c('x'), UP], pushes: [[c(THINK_OPEN + 'a')], [c('b')], [c(THINK_CLOSE), ANSWER], [c('x')], [UP]] },
    { name: 'think_tags: content closes the block too', stage: () => new ThinkTags(), input: [r('a'), c('x')], pushes: [[c(THINK_OPEN + 'a')], [c(THINK_CLOSE), c('x')]] },
    { name: 'think_tags: a finish closes an open block', stage: () => new ThinkTags(), input: [r('a'), LENGTH], pushes: [[c(THINK_OPEN + 'a')], [c(THINK_CLOSE), LENGTH]] },
    { name: 'think_tags: flush closes an open block', stage: () => new ThinkTags(), input: [r('a')], all: [c(THINK_OPEN + 'a'), c(THINK_CLOSE)] },
    { name: 'think_tags: no reasoning, no tags', stage: () => new ThinkTags(), input: [ANSWER, c('x'), UP], all: [ANSWER, c('x'), UP] },
    { name: 'think_tags: reasoning after the answer started opens a new block', stage: () => new ThinkTags(), input: [c('x'), r('a'), c('y')], all: [c('x'), c(THINK_OPEN + 'a'), c(THINK_CLOSE), c('y')] },
    { name: 'hidden drops reasoning only', stage: () => new HiddenReasoning(), input: [r('a'), search, c('x'), UP], all: [search, c('x'), UP] },
  ])
  t.equal(reasoningPresentation('reasoning_content'), undefined, 'reasoning_content needs no stage')
  t.type(reasoningPresentation('think_tags'), ThinkTags)
  t.type(reasoningPresentation('hidden'), HiddenReasoning)
})

t.test('UsageAccounting', async (t) => {
  const rows: Array<{ name: string; input: TurnEvent[]; totals: { prompt: number; completion: number; reasoning: number; cached: number } }> = [
    { name: 'estimate without upstream counts', input: [r('abcdefgh'), c('abcd'), UP], totals: { prompt: 2, completion: 3, reasoning: 2, cached: 0 } },
    { name: 'the last upstream counts win', input: [usage(4), c('abcd'), { kind: 'usage', usage: { input: 7, output: 9, reasoning: 2, cached: 5 } }, UP], totals: { prompt: 7, completion: 9, reasoning: 2, cached: 5 } },
    { name: 'cut by max_tokens: no more than went out', input: [usage(50), c('abcdefgh'), LENGTH], totals: { prompt: 1, completion: 2, reasoning: 0, cached: 0 } },
    { name: 'a stop cut keeps the upstream count', input: [usage(50), c('abcdefgh'), STOP], totals: { prompt: 1, completion: 50, reasoning: 0, cached: 0 } },
    { name: 'reasoning never exceeds completion', input: [{ kind: 'usage', usage: { input: 1, output: 3, reasoning: 10 } }], totals: { prompt: 1, completion: 3, reasoning: 3, cached: 0 } },
  ]
  for (const row of rows) {
    const u = new UsageAccounting()
    const { all } = drive(u, row.input)
    t.same(all, row.input, `${row.name}: every event passes through`)
    t.same(u.totals('12345678'), row.totals, row.name)
  }
})

t.test('FrameDecoder', async (t) => {
  const created: Frame = { 'response.created': { chat_id: 'c', parent_id: 'p', response_id: 'r1' } }
  const delta = (d: Record<string, unknown>, extra: Partial<Frame> = {}): Frame => ({ choices: [{ delta: d }], ...extra })
  const rows: Array<{ name: string; frames: Frame[]; events: TurnEvent[][] }> = [
    { name: 'created is bookkeeping', frames: [created, { 'response.info': { action: 'keep_alive' } }], events: [[], []] },
    {
      name: 'think then answer (2025)',
      frames: [delta({ content: 'hm', phase: 'think' }), delta({ content: 'Hi', phase: 'answer' }), delta({ content: '!', phase: 'answer' }), delta({ content: '', phase: 'answer', status: 'finished' })],
      events: [[r('hm')], [ANSWER, c('Hi')], [c('!')], [UP]],
    },
    {
      name: 'thinking_summary snapshots become increments (2026)',
      frames: [
        delta({ content: '', phase: 'thinking_summary', extra: { summary_thought: { content: ['A'] } } }),
        delta({ content: '', phase: 'thinking_summary', extra: { summary_thought: { content: ['A', 'B'] } } }),
        delta({ content: '', phase: 'thinking_summary', extra: { summary_thought: { content: ['A', 'B'] } }, status: 'finished' }),
      ],
      events: [[r('A')], [r('\nB')], []],
    },
    { name: 'usage comes first', frames: [delta({ content: 'x', phase: 'answer' }, { usage: { input_tokens: 3, output_tokens: 1 } })], events: [[{ kind: 'usage', usage: { input: 3, output: 1 } }, ANSWER, c('x')]] },
    { name: 'search results', frames: [delta({ content: '', name: 'web_search', phase: 'web_search', extra: { web_search_info: [{ url: 'https://a' }] } })], events: [[search]] },
    { name: 'function frames and unknown phases are dropped', frames: [delta({ role: 'function', content: 'Tool x', phase: 'answer' }), delta({ content: 'img', phase: 'image_gen' })], events: [[], []] },
    { name: 'an empty answer frame says nothing', frames: [delta({ content: '', phase: 'answer' })], events: [[]] },
    { name: 'answer phase marker again after reasoning', frames: [delta({ content: 'a' }), delta({ content: 'r', phase: 'think' }), delta({ content: 'b' })], events: [[ANSWER, c('a')], [r('r')], [ANSWER, c('b')]] },
    {
      name: 'a second candidate is ignored',
      frames: [created, delta({ content: 'A', phase: 'answer' }, { response_id: 'r1' }), delta({ content: 'X', phase: 'answer' }, { response_id: 'r2' }), { error: 'boom', response_id: 'r2' }],
      events: [[], [ANSWER, c('A')], [], []],
    },
  ]
  for (const row of rows) {
    const d = new FrameDecoder()
    t.same(row.frames.map((f) => d.push(f)), row.events, row.name)
  }
  const d = new FrameDecoder()
  d.push(delta({ content: 'x', phase: 'answer' }, { response_id: 'first' }))
  t.equal(d.responseId, 'first', 'without response.created the first response_id is the answer')
  t.equal(d.finished, false)
  d.push(delta({ content: '', phase: 'answer', status: 'finished' }, { response_id: 'first' }))
  t.equal(d.finished, true)
  t.throws(() => new FrameDecoder().push({ error: { code: 'internal_error', details: 'Internal error!' } }), UpstreamError)
  try {
    new FrameDecoder().push({ success: false, data: { code: 'RateLimited', details: 'limit', num: 2 } })
  } catch (err) {
    t.equal((err as UpstreamError).kind, 'rate_limited')
    t.equal((err as UpstreamError).retryAfterMs, 2 * 3_600_000)
  }
})

t.test('Pipeline chains stages, skips missing ones and flushes in order', async (t) => {
  const p = new Pipeline([new StopSequenceCut(['END']), undefined, new ThinkTags()])
  t.same(p.push(r('a')), [c(THINK_OPEN + 'a')])
  t.same(p.push(c('xE')), [c(THINK_CLOSE), c('x')], 'the held tail waits')
  // The stop stage releases the held "E" at the end: the stages after it still see it.
  t.same(p.flush(), [c('E')])
  const q = new Pipeline([new StopSequenceCut(['END']), new ThinkTags()])
  q.push(r('a'))
  t.same(q.flush(), [c(THINK_CLOSE)], 'a later stage flushes after what earlier ones released')
  t.same(new Pipeline([]).push(c('x')), [c('x')], 'no stages: identity')
})

t.test('textPipeline: cuts before accounting before presentation', async (t) => {
  const u = new UsageAccounting()
  const p = textPipeline({ thinkingOutput: 'hidden', stop: ['END'], maxTokens: 2 }, u)
  const out = [r('abcd'), ANSWER, c('efEN'), c('Dgh')].flatMap((e) => p.push(e))
  t.same(out, [ANSWER, c('ef'), cutBy('END')], 'hidden reasoning is dropped after being counted')
  t.same(u.totals(''), { prompt: 0, completion: 2, reasoning: 1, cached: 0 })
  const u2 = new UsageAccounting()
  const p2 = textPipeline({ thinkingOutput: 'think_tags', stop: [], maxTokens: 1 }, u2)
  t.same([r('abcd'), r('efgh')].flatMap((e) => p2.push(e)), [c(THINK_OPEN + 'abcd'), c(THINK_CLOSE), LENGTH], 'one block, closed at the cut')
})
