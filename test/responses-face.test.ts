/** The Responses API wire format: golden SSE events, the JSON body, failures. */
import t from 'tap'
import type { CollectedAnswer } from '../src/faces/face.js'
import { itemId, responseBody, type ResponseContext } from '../src/responses/output.js'
import { ARGUMENT_FRAGMENT, ResponsesStreamFace } from '../src/responses/stream.js'

const usage = (prompt: number, completion: number, reasoning = 0) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  prompt_tokens_details: { cached_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: reasoning },
})

function ctx (extra: Partial<ResponseContext> = {}): ResponseContext {
  let n = 0
  return {
    id: 'resp_1',
    createdAt: 1700000000,
    model: 'qwen3-max',
    request: { model: 'qwen3-max', input: 'hi' },
    customTools: new Set(['apply_patch']),
    newId: (p) => `${p}_${++n}`,
    ...extra,
  }
}

interface Ev { event: string; data: Record<string, any> }
function parse (sse: string): Ev[] {
  return sse.split('\n\n').filter(Boolean).map((block) => {
    const [ev, data] = block.split('\n')
    return { event: ev!.slice('event: '.length), data: JSON.parse(data!.slice('data: '.length)) }
  })
}

const GOLDEN: Array<[string, Record<string, unknown>]> = [
  ['response.created', { response: { id: 'resp_1', status: 'in_progress', output: [] } }],
  ['response.in_progress', { response: { id: 'resp_1', status: 'in_progress' } }],
  ['response.output_item.added', { output_index: 0, item: { type: 'reasoning', id: 'rs_1', summary: [] } }],
  ['response.reasoning_summary_part.added', { item_id: 'rs_1', output_index: 0, summary_index: 0, part: { type: 'summary_text', text: '' } }],
  ['response.reasoning_summary_text.delta', { item_id: 'rs_1', output_index: 0, summary_index: 0, delta: 'Thinking' }],
  ['response.reasoning_summary_text.done', { item_id: 'rs_1', output_index: 0, summary_index: 0, text: 'Thinking' }],
  ['response.reasoning_summary_part.done', { item_id: 'rs_1', part: { type: 'summary_text', text: 'Thinking' } }],
  ['response.output_item.done', { output_index: 0, item: { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Thinking' }] } }],
  ['response.output_item.added', { output_index: 1, item: { type: 'message', id: 'msg_2', status: 'in_progress', role: 'assistant', content: [] } }],
  ['response.content_part.added', { item_id: 'msg_2', output_index: 1, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }],
  ['response.output_text.delta', { item_id: 'msg_2', output_index: 1, content_index: 0, delta: 'Hello ' }],
  ['response.output_text.delta', { item_id: 'msg_2', delta: 'world' }],
  ['response.output_text.done', { item_id: 'msg_2', output_index: 1, content_index: 0, text: 'Hello world' }],
  ['response.content_part.done', { item_id: 'msg_2', part: { type: 'output_text', text: 'Hello world' } }],
  ['response.output_item.done', { output_index: 1, item: { type: 'message', id: 'msg_2', status: 'completed', content: [{ type: 'output_text', text: 'Hello world' }] } }],
  ['response.output_item.added', { output_index: 2, item: { type: 'function_call', id: 'fc_a', call_id: 'call_a', name: 'shell', arguments: '', status: 'in_progress' } }],
  ['response.function_call_arguments.delta', { item_id: 'fc_a', output_index: 2, delta: '{"command":["ls"]}' }],
  ['response.function_call_arguments.done', { item_id: 'fc_a', output_index: 2, name: 'shell', arguments: '{"command":["ls"]}' }],
  ['response.output_item.done', { output_index: 2, item: { type: 'function_call', id: 'fc_a', call_id: 'call_a', arguments: '{"command":["ls"]}', status: 'completed' } }],
  ['response.output_item.added', { output_index: 3, item: { type: 'custom_tool_call', id: 'ctc_b', call_id: 'call_b', name: 'apply_patch', input: '', status: 'in_progress' } }],
  ['response.custom_tool_call_input.delta', { item_id: 'ctc_b', output_index: 3, delta: '*** Begin Patch\n' }],
  ['response.custom_tool_call_input.done', { item_id: 'ctc_b', output_index: 3, input: '*** Begin Patch\n' }],
  ['response.output_item.done', { output_index: 3, item: { type: 'custom_tool_call', id: 'ctc_b', call_id: 'call_b', name: 'apply_patch', input: '*** Begin Patch\n', status: 'completed' } }],
  ['response.completed', { response: { id: 'resp_1', status: 'completed', usage: { input_tokens: 10, output_tokens: 6, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 16 } } }],
]

t.test('golden stream: reasoning, text, a function call and a custom tool call', async (t) => {
  const f = new ResponsesStreamFace(ctx())
  let out = f.start()
  out += f.events([{ kind: 'reasoning', text: 'Thinking' }, { kind: 'content', text: 'Hello ' }])
  out += f.events([{ kind: 'content', text: 'world' }])
  out += f.events([
    { kind: 'tool_call', call: { index: 0, id: 'call_a', name: 'shell', arguments: '{"command":["ls"]}' } },
    { kind: 'tool_call', call: { index: 1, id: 'call_b', name: 'apply_patch', arguments: '{"input":"*** Begin Patch\\n"}' } },
  ])
  out += f.end({ reason: 'tool_calls', usage: usage(10, 6, 2) })
  const evs = parse(out)
  t.equal(evs.length, GOLDEN.length)
  evs.forEach((e, i) => {
    const [type, fields] = GOLDEN[i]!
    t.equal(e.event, type, `event ${i} name`)
    t.equal(e.data.type, type, `event ${i} type`)
    t.equal(e.data.sequence_number, i, `event ${i} sequence_number`)
    t.match(e.data, fields, `event ${i} fields`)
  })
  const completed = evs[evs.length - 1]!.data.response
  t.same(completed.output.map((o: any) => `${o.type}:${o.id}`), ['reasoning:rs_1', 'message:msg_2', 'function_call:fc_a', 'custom_tool_call:ctc_b'], 'response.completed lists every item')
  const doneItems = evs.filter((e) => e.event === 'response.output_item.done').map((e) => e.data.item)
  t.same(completed.output, doneItems, 'and each is the item of its output_item.done')
  t.equal(f.keepAlive, ': keep-alive\n\n')
})

t.test('stream: max_output_tokens makes the response and the message incomplete; an empty answer has an empty message', async (t) => {
  const f = new ResponsesStreamFace(ctx())
  f.start()
  f.events([{ kind: 'content', text: 'cut' }])
  const end = parse(f.end({ reason: 'length', usage: usage(1, 1) }))
  const last = end[end.length - 1]!.data
  t.equal(last.type, 'response.completed')
  t.equal(last.response.status, 'incomplete')
  t.same(last.response.incomplete_details, { reason: 'max_output_tokens' })
  t.equal(last.response.output[0].status, 'incomplete')

  const g = new ResponsesStreamFace(ctx())
  g.start()
  const empty = parse(g.end({ reason: 'stop', usage: usage(1, 0) }))
  t.same(empty.map((e) => e.event), [
    'response.output_item.added', 'response.content_part.added', 'response.output_text.done',
    'response.content_part.done', 'response.output_item.done', 'response.completed',
  ])
  t.equal(empty[5]!.data.response.output[0].content[0].text, '')
})

t.test('stream failure: the open item is closed, then response.failed with the error', async (t) => {
  const f = new ResponsesStreamFace(ctx())
  f.start()
  f.events([{ kind: 'content', text: 'partial' }])
  const evs = parse(f.fail({ status: 502, message: 'Upstream broke', type: 'server_error', param: null, code: 'upstream_error' }))
  const failed = evs[evs.length - 1]!.data
  t.equal(failed.type, 'response.failed')
  t.equal(failed.response.status, 'failed')
  t.same(failed.response.error, { code: 'upstream_error', message: 'Upstream broke' })
  t.equal(failed.response.output[0].status, 'incomplete')
  const g = new ResponsesStreamFace(ctx())
  const noCode = parse(g.fail({ status: 500, message: 'x', type: 'server_error', param: null, code: null }))
  t.same(noCode[0]!.data.response.error, { code: 'server_error', message: 'x' })
})

t.test('long arguments are streamed in fragments that join to the whole', async (t) => {
  const args = JSON.stringify({ command: ['echo', 'y'.repeat(ARGUMENT_FRAGMENT * 2)] })
  const f = new ResponsesStreamFace(ctx())
  const evs = parse(f.events([{ kind: 'tool_call', call: { index: 0, id: 'call_z', name: 'shell', arguments: args } }]))
  const deltas = evs.filter((e) => e.event === 'response.function_call_arguments.delta').map((e) => e.data.delta)
  t.ok(deltas.length > 1)
  t.equal(deltas.join(''), args)
})

t.test('JSON body echoes the request and lists reasoning, message, calls', async (t) => {
  const c = ctx({
    request: {
      model: 'qwen3-max',
      input: 'hi',
      instructions: 'Be brief.',
      max_output_tokens: 100,
      tools: [{ type: 'function', name: 'shell' }],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      reasoning: { effort: 'high', summary: 'auto' },
      temperature: 0.5,
      top_p: 0.9,
      text: { format: { type: 'json_object' }, verbosity: 'low' },
      metadata: { a: 'b' },
      user: 'u',
    },
  })
  const a: CollectedAnswer = {
    content: 'Sure.',
    reasoning: 'Plan.',
    toolCalls: [{ index: 0, id: 'call_q', name: 'shell', arguments: '{}' }, { index: 1, id: 'call_r', name: 'apply_patch', arguments: '{"input":"P"}' }],
    end: { reason: 'tool_calls', usage: usage(5, 3, 1) },
  }
  const body = responseBody(c, a)
  t.match(body, {
    id: 'resp_1',
    object: 'response',
    created_at: 1700000000,
    status: 'completed',
    error: null,
    incomplete_details: null,
    instructions: 'Be brief.',
    max_output_tokens: 100,
    model: 'qwen3-max',
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: 'high', summary: 'auto' },
    store: false,
    temperature: 0.5,
    top_p: 0.9,
    text: { format: { type: 'json_object' }, verbosity: 'low' },
    tool_choice: 'auto',
    user: 'u',
    metadata: { a: 'b' },
    usage: { input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 1 }, total_tokens: 8 },
  })
  t.same(body.output, [
    { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Plan.' }] },
    { type: 'message', id: 'msg_2', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Sure.', annotations: [], logprobs: [] }] },
    { type: 'function_call', id: 'fc_q', status: 'completed', call_id: 'call_q', name: 'shell', arguments: '{}' },
    { type: 'custom_tool_call', id: 'ctc_r', status: 'completed', call_id: 'call_r', name: 'apply_patch', input: 'P' },
  ])
  const plain = responseBody(ctx(), { content: '', reasoning: '', toolCalls: [], end: { reason: 'length', usage: usage(1, 1) } })
  t.match(plain, {
    status: 'incomplete',
    incomplete_details: { reason: 'max_output_tokens' },
    instructions: null,
    max_output_tokens: null,
    parallel_tool_calls: true,
    reasoning: { effort: null, summary: null },
    temperature: 1,
    top_p: 1,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: [],
    user: null,
    metadata: {},
  })
  t.same((plain.output as any[]).map((o) => [o.type, o.status, o.content[0].text]), [['message', 'incomplete', '']])
  t.match(itemId('msg'), /^msg_[0-9a-f]{24}$/)
  t.match(responseBody({ ...ctx(), newId: undefined }, { content: 'x', reasoning: '', toolCalls: [], end: { reason: 'stop', usage: usage(1, 1) } }).output, [{ id: /^msg_[0-9a-f]{24}$/ }])
})
