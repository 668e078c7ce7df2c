// The OpenAI face's wire format for every kind of output event, pinned as golden text.
import t from 'tap'
import type { CollectedAnswer, OutEvent } from '../src/faces/face.js'
import { OpenAIStreamFace } from '../src/faces/openai-stream.js'
import { chatCompletion } from '../src/openai/chunks.js'

const usage = { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 1 } }
const call = { index: 0, id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }

function frames (text: string): unknown[] {
  return text.split('\n\n').filter(Boolean).map((f) => {
    t.match(f, /^data: /)
    const data = f.slice(6)
    return data === '[DONE]' ? data : JSON.parse(data)
  })
}

t.test('stream face: role chunk, events, finish, usage, [DONE]', async (t) => {
  const face = new OpenAIStreamFace('chatcmpl-1', 100, 'qwen3-max', true)
  t.equal(face.keepAlive, ': keep-alive\n\n')
  const events: OutEvent[] = [{ kind: 'reasoning', text: 'hm' }, { kind: 'content', text: 'Let me check.' }, { kind: 'tool_call', call }]
  const out = frames(face.start() + face.events(events) + face.end({ reason: 'tool_calls', usage })) as any[]
  const deltas = out.slice(0, -2).map((c) => c.choices[0].delta)
  t.same(deltas, [
    { role: 'assistant', content: '', refusal: null },
    { reasoning_content: 'hm' },
    { content: 'Let me check.' },
    { tool_calls: [{ index: 0, id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
    { tool_calls: [{ index: 0, function: { arguments: '{"city":"Paris"}' } }] },
    {},
  ])
  t.equal(out.at(-3).choices[0].finish_reason, 'tool_calls')
  t.same(out.at(-2), { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 100, model: 'qwen3-max', system_fingerprint: 'fp_qwen_gateway', choices: [], usage })
  t.equal(out.at(-1), '[DONE]')
  for (const c of out.slice(0, -2)) t.equal(c.usage, null, 'usage: null on every chunk when usage was asked for')
})

t.test('stream face: no usage chunk unless asked; failure is an error frame then [DONE]', async (t) => {
  const face = new OpenAIStreamFace('chatcmpl-2', 1, 'm', false)
  const out = frames(face.end({ reason: 'stop', usage })) as any[]
  t.equal(out.length, 2)
  t.equal(out[0].choices[0].finish_reason, 'stop')
  t.notOk('usage' in out[0])
  const err = frames(face.fail({ status: 502, message: 'boom', type: 'api_error', param: null, code: 'upstream_error' }))
  t.same(err, [{ error: { message: 'boom', type: 'api_error', param: null, code: 'upstream_error' } }, '[DONE]'])
})

t.test('non-stream body: content null with tool calls and no text; text kept otherwise', async (t) => {
  const a: CollectedAnswer = { content: '', reasoning: '', toolCalls: [call], end: { reason: 'tool_calls', usage } }
  const body = chatCompletion('chatcmpl-3', 5, 'qwen3-max', a)
  t.same(body.choices[0], {
    index: 0,
    message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    logprobs: null,
    finish_reason: 'tool_calls',
  })
  const withText = chatCompletion('chatcmpl-4', 5, 'm', { ...a, content: 'Checking.', reasoning: 'r' })
  t.equal(withText.choices[0]!.message.content, 'Checking.')
  t.equal(withText.choices[0]!.message.reasoning_content, 'r')
  const plain = chatCompletion('chatcmpl-5', 5, 'm', { content: 'hi', reasoning: '', toolCalls: [], end: { reason: 'stop', usage } })
  t.same(plain.choices[0]!.message, { role: 'assistant', content: 'hi', refusal: null })
  t.same(plain.usage, usage)
})
