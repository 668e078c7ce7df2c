/**
 * The tool-call parser (scanner + stage), table-driven: every scripted answer is fed whole, one
 * character at a time, and split in two at every character boundary; all must give the same content
 * and calls, and no marker text may reach the content.
 */
import t from 'tap'
import { ToolCallStage, type TurnEvent } from '../src/pipeline/index.js'
import type { ChatRequest } from '../src/schemas.js'
import { DEFAULT_TOOL_MARKERS, MarkerSet, ModelOutputError, toolPlan, type ToolMarkers, type ToolPlan } from '../src/tools/index.js'
import { CallScanner } from '../src/tools/scanner.js'
import { readCall } from '../src/tools/calls.js'

const WEATHER = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] } } }
const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } }

function plan (extra: Partial<ChatRequest> = {}, markers: ToolMarkers = DEFAULT_TOOL_MARKERS): ToolPlan {
  return toolPlan({ model: 'm', messages: [{ role: 'user', content: 'hi' }], tools: [WEATHER, TIME], ...extra } as ChatRequest, markers)!
}

interface Result { content: string; calls: Array<{ index: number; name: string; arguments: string }>; finish: string | undefined; error?: ModelOutputError }

function run (p: ToolPlan, pieces: string[]): Result {
  let n = 0
  const stage = new ToolCallStage(p, () => `call_${n++}`)
  const events: TurnEvent[] = []
  try {
    for (const piece of pieces) events.push(...stage.push({ kind: 'content', text: piece }))
    events.push(...stage.push({ kind: 'finish', reason: 'stop', upstream: true }))
  } catch (err) {
    return { content: '', calls: [], finish: undefined, error: err as ModelOutputError }
  }
  let content = ''
  const calls: Result['calls'] = []
  let finish: string | undefined
  for (const e of events) {
    if (e.kind === 'content') {
      // No empty content event, no content after the first call.
      if (e.text.length === 0 || calls.length > 0) content += '<VIOLATION>'
      content += e.text
    } else if (e.kind === 'tool_call') {
      calls.push({ index: e.call.index, name: e.call.name, arguments: e.call.arguments })
    } else if (e.kind === 'finish') {
      finish = e.reason
    }
  }
  return { content, calls, finish }
}

/** Whole, per character, and split in two at every boundary. */
function splits (answer: string): string[][] {
  const out = [[answer], Array.from(answer)]
  for (let i = 1; i < answer.length; i++) out.push([answer.slice(0, i), answer.slice(i)])
  return out
}

const call = (name: string, args: unknown, index = 0) => ({ index, name, arguments: JSON.stringify(args) })

interface Row { name: string; answer: string; content: string; calls?: Result['calls']; plan?: () => ToolPlan }

const rows: Row[] = [
  { name: 'clean call', answer: '[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]', content: '', calls: [call('get_weather', { city: 'Paris' })] },
  { name: 'prose before the call', answer: 'Let me check the weather.\n[TOOL CALL]\n{"name":"get_weather","arguments":{"city":"Paris","unit":"c"}}\n[END TOOL CALL]', content: 'Let me check the weather.\n', calls: [call('get_weather', { city: 'Paris', unit: 'c' })] },
  { name: 'mangled: underscore', answer: '[TOOL_CALL]{"name":"get_weather","arguments":{"city":"Oslo"}}[END_TOOL_CALL]', content: '', calls: [call('get_weather', { city: 'Oslo' })] },
  { name: 'mangled: lower case, no closing bracket', answer: 'ok [tool call\n{"name":"get_weather","arguments":{"city":"Rome"}}', content: 'ok ', calls: [call('get_weather', { city: 'Rome' })] },
  { name: 'mangled: plural, dash, spaces', answer: '[ TOOL-CALLS ] {"name":"get_time","arguments":{}}', content: '', calls: [call('get_time', {})] },
  { name: '<tool_call> form', answer: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n</tool_call>', content: '', calls: [call('get_weather', { city: 'Lima' })] },
  { name: 'JSON in a fence after the marker', answer: '[TOOL CALL]\n```json\n{"name":"get_time","arguments":{}}\n```\n[END TOOL CALL]', content: '', calls: [call('get_time', {})] },
  { name: 'two parallel calls', answer: 'Checking both.\n[TOOL CALL]\n{"name":"get_weather","arguments":{"city":"Paris"}}\n[END TOOL CALL]\n[TOOL CALL]\n{"name":"get_time","arguments":{}}\n[END TOOL CALL]', content: 'Checking both.\n', calls: [call('get_weather', { city: 'Paris' }), call('get_time', {}, 1)] },
  { name: 'two objects in one block', answer: '[TOOL CALL]\n{"name":"get_time","arguments":{}}\n{"name":"get_weather","arguments":{"city":"Bern"}}\n[END TOOL CALL]', content: '', calls: [call('get_time', {}), call('get_weather', { city: 'Bern' }, 1)] },
  { name: 'parallel off keeps the first call', answer: '[TOOL CALL]{"name":"get_time","arguments":{}}[END TOOL CALL][TOOL CALL]{"name":"get_weather","arguments":{"city":"Bern"}}[END TOOL CALL]', content: '', calls: [call('get_time', {})], plan: () => plan({ parallel_tool_calls: false }) },
  { name: 'text after the call is dropped', answer: '[TOOL CALL]{"name":"get_time","arguments":{}}[END TOOL CALL]\nI called the tool for you.', content: '', calls: [call('get_time', {})] },
  { name: 'braces and markers inside argument strings', answer: '[TOOL CALL]{"name":"get_weather","arguments":{"city":"a}b{\\"[TOOL CALL]"}}[END TOOL CALL]', content: '', calls: [call('get_weather', { city: 'a}b{"[TOOL CALL]' })] },
  { name: 'arguments as a JSON string, trailing comma repaired', answer: '[TOOL CALL]{"name":"get_weather","arguments":"{\\"city\\":\\"Kyiv\\"}",}[END TOOL CALL]', content: '', calls: [call('get_weather', { city: 'Kyiv' })] },
  { name: 'quoted marker in a code fence', answer: 'Use this format:\n```\n[TOOL CALL]\n{"name":"get_time","arguments":{}}\n[END TOOL CALL]\n```\nThat is all.', content: 'Use this format:\n```\n[TOOL CALL]\n{"name":"get_time","arguments":{}}\n[END TOOL CALL]\n```\nThat is all.' },
  { name: 'quoted marker in inline code', answer: 'Write `[TOOL CALL]{"name":"get_time","arguments":{}}` to call.', content: 'Write `[TOOL CALL]{"name":"get_time","arguments":{}}` to call.' },
  { name: 'a call after a closed fence is a call', answer: '```js\nx = "[TOOL CALL]"\n```\n[TOOL CALL]{"name":"get_time","arguments":{}}', content: '```js\nx = "[TOOL CALL]"\n```\n', calls: [call('get_time', {})] },
  { name: 'invalid arguments under auto are text', answer: 'Sure.\n[TOOL CALL]\n{"name":"get_weather","arguments":{"city":42}}\n[END TOOL CALL]', content: 'Sure.\n[TOOL CALL]\n{"name":"get_weather","arguments":{"city":42}}\n[END TOOL CALL]' },
  { name: 'unknown tool under auto is text', answer: '[TOOL CALL]{"name":"rm_rf","arguments":{}}', content: '[TOOL CALL]{"name":"rm_rf","arguments":{}}' },
  { name: 'an invalid call then a valid one', answer: '[TOOL CALL]{"name":"get_weather","arguments":{}}[END TOOL CALL]\n[TOOL CALL]{"name":"get_weather","arguments":{"city":"Oslo"}}[END TOOL CALL]', content: '[TOOL CALL]{"name":"get_weather","arguments":{}}[END TOOL CALL]\n', calls: [call('get_weather', { city: 'Oslo' })] },
  { name: 'unterminated call is text', answer: 'Hm [TOOL CALL]\n{"name":"get_weather","arguments":{"city":"Pa', content: 'Hm [TOOL CALL]\n{"name":"get_weather","arguments":{"city":"Pa' },
  { name: 'marker words in prose are text', answer: 'A [tool calling] system and [TOOL CALL] alone, then [tool', content: 'A [tool calling] system and [TOOL CALL] alone, then [tool' },
  { name: 'a marker lead-in that is too long is text', answer: `[TOOL CALL] ${'x'.repeat(200)} {"name":"get_time"}`, content: `[TOOL CALL] ${'x'.repeat(200)} {"name":"get_time"}` },
  { name: 'repeated marker: the second one opens the call', answer: '[TOOL CALL]\n[TOOL CALL]\n{"name":"get_time","arguments":{}}', content: '[TOOL CALL]\n', calls: [call('get_time', {})] },
  { name: 'no arguments key means {}', answer: '[TOOL CALL]{"name":"get_time"}', content: '', calls: [call('get_time', {})] },
  { name: 'plain text with CJK and emoji', answer: '你好 🚀 <b>bold</b> [link](x) done', content: '你好 🚀 <b>bold</b> [link](x) done' },
  {
    name: 'configured markers',
    answer: 'Go. <<CALL>>{"name":"get_time","arguments":{}}<<END>>',
    content: 'Go. ',
    calls: [call('get_time', {})],
    plan: () => plan({}, { open: '<<CALL>>', close: '<<END>>' }),
  },
  {
    name: 'configured bracket markers are lenient too',
    answer: '[FN CALL]{"name":"get_time","arguments":{}}[/FN CALL] and then [fn_call {"name":"get_time","arguments":{}}',
    content: '',
    calls: [call('get_time', {}), call('get_time', {}, 1)],
    plan: () => plan({}, { open: '[FN CALL]', close: '[/FN CALL]' }),
  },
]

t.test('every answer, split at every character boundary, parses the same', async (t) => {
  for (const row of rows) {
    const p = (row.plan ?? (() => plan()))()
    const expected = { content: row.content, calls: row.calls ?? [], finish: (row.calls ?? []).length > 0 ? 'tool_calls' : 'stop' }
    const all = splits(row.answer)
    const bad = all.map((pieces) => ({ pieces, got: run(p, pieces) })).find(({ got }) => JSON.stringify(got) !== JSON.stringify(expected))
    if (bad) t.same(bad.got, expected, `${row.name}: split ${JSON.stringify(bad.pieces)}`)
    else t.pass(`${row.name}: ${all.length} splits agree`)
  }
})

t.test('text before a marker is released without waiting for the end', async (t) => {
  const stage = new ToolCallStage(plan())
  const out = (text: string) => stage.push({ kind: 'content', text }).map((e) => e.kind === 'content' ? e.text : e.kind)
  t.same(out('Let me look '), ['Let me look '])
  t.same(out('it up ['), ['it up '], 'only the possible marker start is held')
  t.same(out('TOO'), [])
  t.same(out('L CALL]'), [])
  t.same(out('{"name":"get_time","arguments":{}}'), ['tool_call'])
  t.same(out(' trailing'), [], 'nothing after the call')
  t.same(out('`'), [])
  t.same(stage.flush(), [])
})

t.test('a marker prefix that turns out to be text is released as soon as that is known', async (t) => {
  const stage = new ToolCallStage(plan())
  t.same(stage.push({ kind: 'content', text: 'see [TO' }), [{ kind: 'content', text: 'see ' }])
  t.same(stage.push({ kind: 'content', text: 'DO] list' }), [{ kind: 'content', text: '[TODO] list' }])
  t.same(stage.push({ kind: 'content', text: ' [tool' }), [{ kind: 'content', text: ' ' }])
  t.same(stage.flush(), [{ kind: 'content', text: '[tool' }], 'flush releases a held prefix')
})

t.test('forced calls: text is held and dropped; no valid call throws ModelOutputError', async (t) => {
  const req = plan({ tool_choice: 'required' })
  const required = () => req
  const want = { content: '', calls: [call('get_time', {})], finish: 'tool_calls' }
  const badSplit = splits('Sure! [TOOL CALL]{"name":"get_time","arguments":{}}[END TOOL CALL]').find((pieces) => JSON.stringify(run(required(), pieces)) !== JSON.stringify(want))
  t.same(badSplit && run(required(), badSplit), badSplit && want, 'every split gives the call and no content')
  const none = run(required(), ['I would rather just talk.'])
  t.type(none.error, ModelOutputError)
  t.equal(none.error!.code, 'tool_call_invalid')
  t.equal(none.error!.statusCode, 502)
  t.same(none.error!.problems, ['the answer contained no tool call'])
  const bad = run(required(), ['[TOOL CALL]{"name":"get_weather","arguments":{"unit":"k"}}'])
  t.match(bad.error!.problems[0], /get_weather.*required property 'city'.*allowed values/)
  const named = () => plan({ tool_choice: { type: 'function', function: { name: 'get_weather' } } as ChatRequest['tool_choice'] })
  const wrong = run(named(), ['[TOOL CALL]{"name":"get_time","arguments":{}}'])
  t.match(wrong.error!.problems[0], /the tool to call is `get_weather`, not `get_time`/)
  t.same(run(named(), ['[TOOL CALL]{"name":"get_weather","arguments":{"city":"X"}}']).calls, [call('get_weather', { city: 'X' })])
  // A cut answer is not retried: its finish passes through.
  const stage = new ToolCallStage(required())
  t.same(stage.push({ kind: 'content', text: 'partial' }), [])
  t.same(stage.push({ kind: 'finish', reason: 'length', upstream: false }), [{ kind: 'finish', reason: 'length', upstream: false }])
})

t.test('other events pass through unchanged', async (t) => {
  const stage = new ToolCallStage(plan())
  const r: TurnEvent = { kind: 'reasoning', text: 'hm' }
  t.same(stage.push(r), [r])
  t.same(stage.push({ kind: 'phase', phase: 'answer' }), [{ kind: 'phase', phase: 'answer' }])
})

t.test('call ids are call_ + 24 letters and digits, unique', async (t) => {
  const got = new ToolCallStage(plan()).push({ kind: 'content', text: '[TOOL CALL]{"name":"get_time"}[TOOL CALL]{"name":"get_time"}' })
  const ids = got.map((e) => e.kind === 'tool_call' ? e.call.id : '')
  for (const id of ids) t.match(id, /^call_[A-Za-z0-9]{24}$/)
  t.not(ids[0], ids[1])
})

t.test('scanner: an object beyond the size cap is text', async (t) => {
  const s = new CallScanner(new MarkerSet(DEFAULT_TOOL_MARKERS), 20)
  const out = [...s.push('[TOOL CALL]{"name":"get_time","arguments":{"x":"'), ...s.push('yyyy"}}'), ...s.end()]
  t.ok(out.every((o) => o.kind === 'text'), 'only text')
  t.equal(out.map((o) => o.kind === 'text' ? o.text : '').join(''), '[TOOL CALL]{"name":"get_time","arguments":{"x":"yyyy"}}')
})

t.test('neutralise makes every marker form inert', async (t) => {
  const m = new MarkerSet(DEFAULT_TOOL_MARKERS)
  t.equal(m.neutralise('a [TOOL CALL] b [END TOOL CALL] c <tool_call> d </tool_call> e [TOOL RESULT x] f [END TOOL RESULT] g [tool_calls'),
    'a (TOOL CALL) b (END TOOL CALL) c (tool_call) d (/tool_call) e (TOOL RESULT x] f (END TOOL RESULT) g (tool_calls')
  t.equal(m.neutralise('plain [link](x) <b>'), 'plain [link](x) <b>')
  const own = new MarkerSet({ open: '<<CALL>>', close: '<<END>>' })
  t.equal(own.neutralise('x <<CALL>> y <<end>>'), 'x (<CALL>) y (<end>)')
  const scanner = new CallScanner(m, 1000)
  const scanned = [...scanner.push(m.neutralise('[TOOL CALL]{"name":"get_time"}')), ...scanner.end()]
  t.same(scanned.map((s) => s.kind), ['text'], 'neutralised markers do not open a call')
})

t.test('readCall accepts the shapes models write and names what is wrong', async (t) => {
  const p = plan()
  const rows: Array<[string, unknown]> = [
    ['{"function": {"name": "get_weather", "arguments": {"city": "A"}}}', { call: { name: 'get_weather', arguments: '{"city":"A"}' } }],
    ['{"name": "get_weather", "parameters": {"city": "B"}}', { call: { name: 'get_weather', arguments: '{"city":"B"}' } }],
    ['{"name": "get_weather", "args": {"city": "C"}}', { call: { name: 'get_weather', arguments: '{"city":"C"}' } }],
    ['{"name": "get_weather", "input": {"city": "D"}}', { call: { name: 'get_weather', arguments: '{"city":"D"}' } }],
    ['{"name": "get_time", "arguments": " "}', { call: { name: 'get_time', arguments: '{}' } }],
    ['{"name": "get_time", "arguments": "[1]"}', { problem: 'the "arguments" of `get_time` are not a JSON object' }],
    ['{"name": "get_time", "arguments": "nope"}', { problem: 'the "arguments" of `get_time` are not a JSON object' }],
    ['{"name": 7}', { problem: 'the call has no "name"' }],
    ['{"oops"}', { problem: 'the text between the markers is not a JSON object' }],
    ['{"name": "rm"}', { problem: '`rm` is not one of the declared tools (get_weather, get_time)' }],
  ]
  for (const [json, want] of rows) t.same(readCall(json, p), want, json)
})
