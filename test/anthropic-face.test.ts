/** The Anthropic wire format: golden SSE text, the JSON body, stop reasons and the error envelope. */
import t from 'tap'
import { anthropicErrorEvent, anthropicErrorType, toAnthropicError } from '../src/anthropic/errors.js'
import { anthropicMessage, messageId, stopReason, toolInput, toolUseId } from '../src/anthropic/message.js'
import { AnthropicStreamFace, INPUT_FRAGMENT, fragments } from '../src/anthropic/stream.js'
import { AuthenticationError, InvalidRequestError, UpstreamError } from '../src/errors.js'
import type { TurnEnd } from '../src/faces/face.js'

const usage = (prompt: number, completion: number, cached = 0, reasoning = 0) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  prompt_tokens_details: { cached_tokens: cached },
  completion_tokens_details: { reasoning_tokens: reasoning },
})

const GOLDEN = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me "}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think."}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking the weather."}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_abc","name":"get_weather","input":{}}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":\\"Paris\\"}"}}\n\n',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}\n\n',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9,"input_tokens":10,"cache_read_input_tokens":2}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join('')

t.test('golden stream: thinking, text, a tool call, then tool_use', async (t) => {
  const f = new AnthropicStreamFace('msg_1', 'claude-x', 12)
  let out = f.start()
  out += f.events([{ kind: 'reasoning', text: 'Let me ' }])
  out += f.events([{ kind: 'reasoning', text: 'think.' }, { kind: 'content', text: 'Checking the weather.' }])
  out += f.events([{ kind: 'tool_call', call: { index: 0, id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' } }])
  out += f.end({ reason: 'tool_calls', usage: usage(12, 9, 2) })
  t.equal(out, GOLDEN)
  // Every frame's event line names its data.type.
  for (const block of out.split('\n\n').filter(Boolean)) {
    const [ev, data] = block.split('\n')
    t.equal(ev!.slice('event: '.length), JSON.parse(data!.slice('data: '.length)).type)
  }
  t.equal(f.keepAlive, 'event: ping\ndata: {"type":"ping"}\n\n')
})

t.test('stream: text only ends with end_turn; a stop sequence and max_tokens have their reasons', async (t) => {
  const f = new AnthropicStreamFace('msg_2', 'm', 1)
  f.start()
  const body = f.events([{ kind: 'content', text: 'a' }, { kind: 'content', text: 'b' }])
  t.equal((body.match(/event: content_block_start/g) ?? []).length, 1, 'one text block for consecutive text')
  const end = f.end({ reason: 'stop', usage: usage(1, 1), stopSequence: 'END' })
  t.match(end, /"stop_reason":"stop_sequence","stop_sequence":"END"/)
  t.match(end, /^event: content_block_stop\ndata: {"type":"content_block_stop","index":0}/)

  const g = new AnthropicStreamFace('msg_3', 'm', 1)
  g.start()
  const empty = g.end({ reason: 'length', usage: usage(1, 0) })
  t.match(empty, /content_block_start.*"index":0,"content_block":{"type":"text","text":""}/s, 'an answer without blocks still has an empty text block')
  t.match(empty, /"stop_reason":"max_tokens"/)
})

t.test('stream failure: the open block is closed, then an error event', async (t) => {
  const f = new AnthropicStreamFace('msg_4', 'm', 1)
  f.start()
  f.events([{ kind: 'content', text: 'partial' }])
  const out = f.fail({ status: 502, message: 'Upstream broke', type: 'server_error', param: null, code: 'upstream_error' })
  t.equal(out, 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n' +
    'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"Upstream broke"}}\n\n')
  const g = new AnthropicStreamFace('msg_5', 'm', 1)
  t.equal(g.fail({ status: 503, message: 'busy', type: 'server_error', param: null, code: null }), anthropicErrorEvent({ status: 503, message: 'busy', type: 'x', param: null, code: null }))
})

t.test('long tool input is streamed in fragments that join to the arguments', async (t) => {
  const args = JSON.stringify({ text: 'x'.repeat(INPUT_FRAGMENT * 2) })
  const f = new AnthropicStreamFace('msg_6', 'm', 1)
  const out = f.events([{ kind: 'tool_call', call: { index: 0, id: 'toolu_kept', name: 'f', arguments: args } }])
  const parts = out.split('\n\n').filter((b) => b.includes('input_json_delta')).map((b) => JSON.parse(b.split('\n')[1]!.slice(6)).delta.partial_json as string)
  t.ok(parts.length > 1)
  t.equal(parts.join(''), args)
  t.match(out, /"id":"toolu_kept"/, 'ids that are not call_ ids pass through')
  // Fragments never split a surrogate pair.
  const emoji = 'a'.repeat(INPUT_FRAGMENT - 1) + '😀' + 'b'
  const fr = fragments(emoji, INPUT_FRAGMENT)
  t.equal(fr[0], 'a'.repeat(INPUT_FRAGMENT - 1) + '😀')
  t.equal(fr.join(''), emoji)
  t.same(fragments('', 4), [])
})

t.test('JSON body from a collected answer', async (t) => {
  const end: TurnEnd = { reason: 'tool_calls', usage: usage(20, 7, 5) }
  const m = anthropicMessage('msg_7', 'claude-x', {
    content: 'Calling.',
    reasoning: 'Hmm.',
    toolCalls: [{ index: 0, id: 'call_q', name: 'get_weather', arguments: '{"city":"Oslo"}' }],
    end,
  })
  t.same(m, {
    id: 'msg_7',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [
      { type: 'thinking', thinking: 'Hmm.', signature: '' },
      { type: 'text', text: 'Calling.' },
      { type: 'tool_use', id: 'toolu_q', name: 'get_weather', input: { city: 'Oslo' } },
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: 15, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 5 },
  })
  const onlyCall = anthropicMessage('msg_8', 'm', { content: '', reasoning: '', toolCalls: [{ index: 0, id: 'call_r', name: 'f', arguments: '{}' }], end })
  t.same(onlyCall.content.map((b) => b.type), ['tool_use'])
  const empty = anthropicMessage('msg_9', 'm', { content: '', reasoning: '', toolCalls: [], end: { reason: 'stop', usage: usage(1, 0), stopSequence: 'X' } })
  t.same(empty.content, [{ type: 'text', text: '' }])
  t.equal(empty.stop_reason, 'stop_sequence')
  t.equal(empty.stop_sequence, 'X')
})

t.test('ids, stop reasons and tool input', async (t) => {
  t.match(messageId(), /^msg_[0-9a-f]{24}$/)
  t.equal(toolUseId('call_x1'), 'toolu_x1')
  t.equal(toolUseId('toolu_y'), 'toolu_y')
  t.equal(stopReason({ reason: 'stop', usage: usage(0, 0) }), 'end_turn')
  t.equal(stopReason({ reason: 'length', usage: usage(0, 0) }), 'max_tokens')
  t.same(toolInput({ index: 0, id: 'c', name: 'n', arguments: '[1]' }), {}, 'a non-object input becomes {}')
})

t.test('error envelope per status, headers kept', async (t) => {
  const cases: Array<[number, string]> = [
    [400, 'invalid_request_error'], [401, 'authentication_error'], [403, 'permission_error'], [404, 'not_found_error'],
    [413, 'request_too_large'], [429, 'rate_limit_error'], [500, 'api_error'], [502, 'api_error'], [503, 'overloaded_error'],
    [504, 'api_error'], [529, 'overloaded_error'], [408, 'invalid_request_error'],
  ]
  for (const [status, type] of cases) t.equal(anthropicErrorType(status), type, String(status))
  t.same(toAnthropicError(new InvalidRequestError('bad', 'x')), { status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'bad' } }, headers: {}, code: 'invalid_value' })
  t.same(toAnthropicError(new AuthenticationError('no key')).body, { type: 'error', error: { type: 'authentication_error', message: 'no key' } })
  const rl = toAnthropicError(new UpstreamError('rate_limited', 'slow down', { retryAfterMs: 3000 }))
  t.equal(rl.status, 429)
  t.equal(rl.headers['retry-after'], '3')
  t.equal(rl.body.error.type, 'rate_limit_error')
  const crash = toAnthropicError(new Error('secret internals'))
  t.same(crash, { status: 500, body: { type: 'error', error: { type: 'api_error', message: 'Internal server error' } }, headers: {}, code: 'internal_error' })
})
