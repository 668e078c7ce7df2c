/** JSON mode and structured output: extraction from model answers, the check, and the pipeline stage. */
import t from 'tap'
import { JsonOutputStage, type TurnEvent } from '../src/pipeline/index.js'
import { prepareChat, type ChatRequest } from '../src/openai/request.js'
import { ModelOutputError, checkOutput, extractJson, parseLenient, type OutputPlan } from '../src/tools/index.js'

t.test('extractJson finds the JSON in what models write', async (t) => {
  const rows: Array<[string, boolean, string | undefined]> = [
    ['{"a":1}', true, '{"a":1}'],
    ['  {"a": [1, 2]}  \n', true, '{"a": [1, 2]}'],
    ['```json\n{"a":1}\n```', true, '{"a":1}'],
    ['Here you go:\n```\n{"a":1}\n```\nAnything else?', true, '{"a":1}'],
    ['Sure! The answer is {"a": "b}"} as requested.', true, '{"a": "b}"}'],
    ['Result: {"a":1,} done', true, '{"a":1}'],
    ['{"text": "line one\nline two"}', true, '{"text":"line one\\nline two"}'],
    ['[1, 2, 3]', false, '[1, 2, 3]'],
    ['[1, 2, 3]', true, undefined],
    ['Sorry, I cannot do that.', true, undefined],
    ['{not json} and {"ok": true}', true, '{"ok": true}'],
    ['{"unclosed": 1', true, undefined],
    ['null', false, undefined],
  ]
  for (const [answer, objectOnly, want] of rows) t.equal(extractJson(answer, objectOnly)?.json, want, JSON.stringify(answer))
  t.same(parseLenient('{"a":[1,2,],}'), { value: { a: [1, 2] } })
  t.equal(parseLenient('nope'), undefined)
  t.same(parseLenient('{"t":"a\tb\u0001"}'), { value: { t: 'a\tb\u0001' } }, 'raw control characters in strings are escaped')
})

const plan = (rf: unknown): OutputPlan => prepareChat({ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: rf } as ChatRequest).output!

t.test('checkOutput: json_object parses, json_schema validates', async (t) => {
  const obj = plan({ type: 'json_object' })
  t.same(checkOutput(obj, 'The data: {"a":1}'), { json: '{"a":1}' })
  t.same(checkOutput(obj, 'no json here'), { problems: ['the answer contains no JSON object'] })
  const schema = plan({ type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'] }, strict: true } })
  t.same(checkOutput(schema, '```json\n{"name":"Ann","age":30}\n```'), { json: '{"name":"Ann","age":30}' })
  t.same(checkOutput(schema, '{"name":"Ann","age":"thirty"}'), { problems: ['the JSON does not match the schema: age: must be integer'] })
  const list = plan({ type: 'json_schema', json_schema: { name: 'l', schema: { type: 'array', items: { type: 'number' } } } })
  t.same(checkOutput(list, 'Numbers: [1, 2]'), { json: '[1, 2]' })
  t.same(checkOutput(list, 'none'), { problems: ['the answer contains no JSON value'] })
})

function drive (stage: JsonOutputStage, events: TurnEvent[]): TurnEvent[] {
  return events.flatMap((e) => stage.push(e))
}

const UP: TurnEvent = { kind: 'finish', reason: 'stop', upstream: true }

t.test('the stage holds the text and emits the checked JSON at the end', async (t) => {
  const stage = new JsonOutputStage(plan({ type: 'json_object' }))
  t.same(stage.push({ kind: 'reasoning', text: 'thinking' }), [{ kind: 'reasoning', text: 'thinking' }], 'reasoning passes at once')
  t.same(stage.push({ kind: 'content', text: 'Here: ```json\n{"a"' }), [])
  t.same(stage.push({ kind: 'content', text: ':1}\n```' }), [])
  t.same(stage.push(UP), [{ kind: 'content', text: '{"a":1}' }, UP])
  const bad = new JsonOutputStage(plan({ type: 'json_object' }))
  t.throws(() => drive(bad, [{ kind: 'content', text: 'prose only' }, UP]), new ModelOutputError('json', ['the answer contains no JSON object']))
  try {
    drive(new JsonOutputStage(plan({ type: 'json_object' })), [{ kind: 'content', text: 'x' }, UP])
  } catch (err) {
    t.equal((err as ModelOutputError).code, 'invalid_model_output')
  }
  const cut = new JsonOutputStage(plan({ type: 'json_object' }))
  const LENGTH: TurnEvent = { kind: 'finish', reason: 'length', upstream: false }
  t.same(drive(cut, [{ kind: 'content', text: '{"a":' }, LENGTH]), [{ kind: 'content', text: '{"a":' }, LENGTH], 'a cut answer goes out as it is')
  const call: TurnEvent = { kind: 'tool_call', call: { index: 0, id: 'call_x', name: 'f', arguments: '{}' } }
  const withCall = new JsonOutputStage(plan({ type: 'json_object' }))
  t.same(drive(withCall, [{ kind: 'content', text: 'calling' }, call, { ...UP, reason: 'tool_calls' }]), [call, { kind: 'content', text: 'calling' }, { ...UP, reason: 'tool_calls' }], 'a tool-call answer is not JSON-checked')
  const capped = new JsonOutputStage(plan({ type: 'json_object' }), 8)
  t.same(capped.push({ kind: 'content', text: '{"a":1}' }), [], 'under the cap: held')
  t.throws(() => capped.push({ kind: 'content', text: ' and more' }), { kind: 'limit', code: 'upstream_response_too_large' }, 'over the cap: the gateway limit, not unbounded memory')
  const flushed = new JsonOutputStage(plan({ type: 'json_object' }))
  flushed.push({ kind: 'content', text: 'partial' })
  t.same(flushed.flush(), [{ kind: 'content', text: 'partial' }])
  t.same(flushed.flush(), [])
})
