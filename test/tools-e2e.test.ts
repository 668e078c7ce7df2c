/**
 * Tool calling and JSON output end to end: gateway + simulator over real sockets, the model's
 * answers scripted with `sim.queue(email, { answer })` (CONTRACT §6.7 N2, S7, and the corrective retry).
 */
import t from 'tap'
import type { Simulator } from '../src/simulator/index.js'
import { harness, postJson, sseData } from './helpers/setup.js'

const WEATHER = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }
const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } }
const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER, TIME], ...extra })
const CALL = '[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n[END TOOL CALL]'

function prompts (sim: Simulator): string[] {
  return sim.log().filter((e) => e.path === '/api/v2/chat/completions').map((e) => (e.body as { messages: Array<{ content: string }> }).messages[0]!.content)
}

async function stream (url: string, b: unknown) {
  const res = await postJson(`${url}/v1/chat/completions`, b)
  const data = sseData(await res.text())
  const chunks = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as Record<string, any>)
  return { res, data, chunks }
}

t.test('N2: a clean call, non-stream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 200)
  const j = await res.json() as Record<string, any>
  const m = j.choices[0].message
  t.equal(m.content, null)
  t.equal(m.refusal, null)
  t.equal(j.choices[0].finish_reason, 'tool_calls')
  t.equal(m.tool_calls.length, 1)
  t.match(m.tool_calls[0].id, /^call_[A-Za-z0-9]{24}$/)
  t.equal(m.tool_calls[0].type, 'function')
  t.same([m.tool_calls[0].function.name, JSON.parse(m.tool_calls[0].function.arguments)], ['get_weather', { city: 'Paris' }])
  t.ok(j.usage.completion_tokens > 0)
  const sent = prompts(h.sim)[0]!
  t.match(sent, /^# Tools\n/, 'the tool block is sent as system text')
  t.match(sent, /\n\nWeather in Paris\?$/)
})

t.test('S7: streamed tool-call deltas, text before the call as content', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, frameChars: 3 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: `Let me check.\n${CALL}\n[TOOL CALL]{"name":"get_time","arguments":{}}[END TOOL CALL]\nDone!` })
  const { res, data, chunks } = await stream(h.url, body({ stream: true, stream_options: { include_usage: true } }))
  t.equal(res.status, 200)
  t.equal(data[data.length - 1], '[DONE]')
  t.same(chunks[0]!.choices[0].delta, { role: 'assistant', content: '', refusal: null })
  const deltas = chunks.filter((c) => c.choices.length > 0).map((c) => c.choices[0].delta)
  const content = deltas.map((d) => d.content ?? '').join('')
  t.equal(content, 'Let me check.\n', 'the text before the call, no marker fragment')
  const toolDeltas = deltas.filter((d) => d.tool_calls)
  t.same(toolDeltas.map((d) => d.tool_calls), [
    [{ index: 0, id: toolDeltas[0]!.tool_calls[0].id, type: 'function', function: { name: 'get_weather', arguments: '' } }],
    [{ index: 0, function: { arguments: '{"city":"Paris"}' } }],
    [{ index: 1, id: toolDeltas[2]!.tool_calls[0].id, type: 'function', function: { name: 'get_time', arguments: '' } }],
    [{ index: 1, function: { arguments: '{}' } }],
  ])
  const firstCall = deltas.findIndex((d) => d.tool_calls)
  t.ok(deltas.slice(firstCall).every((d) => d.content === undefined), 'no content after the first call')
  const finishes = chunks.filter((c) => c.choices[0]?.finish_reason)
  t.same(finishes.map((c) => c.choices[0].finish_reason), ['tool_calls'])
  t.same(chunks[chunks.length - 1]!.choices, [])
  t.ok(chunks[chunks.length - 1]!.usage.total_tokens > 0)
})

t.test('stream and non-stream agree on an invalid call under auto: it is text', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const answer = 'I think: [TOOL CALL]{"name":"get_weather","arguments":{"town":"Paris"}}[END TOOL CALL]'
  h.sim.queue(h.sim.accounts[0]!.email, { answer }, { answer })
  const j = await (await postJson(`${h.url}/v1/chat/completions`, body())).json() as Record<string, any>
  t.same([j.choices[0].message.content, j.choices[0].finish_reason, j.choices[0].message.tool_calls], [answer, 'stop', undefined])
  const { chunks } = await stream(h.url, body({ stream: true }))
  t.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), answer)
  t.equal(prompts(h.sim).length, 2, 'no retry under auto')
})

t.test('a forced call that is missing gets one corrective retry, which the second prompt carries', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { answer: 'The weather in Paris is lovely.' }, { answer: `Calling it now. ${CALL}` })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ tool_choice: 'required' }))
  t.equal(res.status, 200)
  const j = await res.json() as Record<string, any>
  t.equal(j.choices[0].finish_reason, 'tool_calls')
  t.equal(j.choices[0].message.content, null, 'a forced call carries no content')
  t.equal(j.choices[0].message.tool_calls[0].function.name, 'get_weather')
  const [first, second] = prompts(h.sim)
  t.notMatch(first, /Gateway note/)
  t.ok(second!.startsWith(first!), 'the corrective prompt is the first one plus the note')
  t.match(second!.slice(first!.length), /^\n\n\[Gateway note\] Your previous answer to this conversation was rejected because it did not contain a valid tool call:\n- the answer contained no tool call\n/)
  t.equal(h.sim.chats(email).length, 2, 'the retry is a new upstream turn')
})

t.test('a forced call still invalid after the retry: 502 tool_call_invalid (status before commit… and an error frame after)', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  const bad = '[TOOL CALL]{"name":"get_weather","arguments":{}}[END TOOL CALL]'
  h.sim.queue(email, { answer: bad }, { answer: 'no' })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ tool_choice: { type: 'function', function: { name: 'get_weather' } } }))
  t.equal(res.status, 502)
  const e = (await res.json() as { error: Record<string, unknown> }).error
  t.same([e.code, e.type], ['tool_call_invalid', 'server_error'])
  t.match(e.message, /no tool call/)
  t.match(prompts(h.sim)[1], /- the arguments of `get_weather` do not match its parameters: must have required property 'city'/)

  h.sim.queue(email, { answer: bad }, { answer: bad })
  const s = await stream(h.url, body({ stream: true, tool_choice: 'required' }))
  t.equal(s.res.status, 200, 'a stream is committed at the first upstream frame')
  t.equal(s.data[s.data.length - 1], '[DONE]')
  const last = s.chunks[s.chunks.length - 1] as { error?: Record<string, unknown> }
  t.equal(last.error?.code, 'tool_call_invalid')
  t.ok(s.chunks.every((c) => !c.choices?.[0]?.finish_reason && !c.choices?.[0]?.delta?.content), 'no content and no finish_reason went out')
  // The account is not blamed: the next request is served by it.
  h.sim.queue(email, { answer: CALL })
  t.equal((await postJson(`${h.url}/v1/chat/completions`, body())).status, 200)
})

t.test('legacy functions answer with function_call', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: CALL }, { answer: CALL })
  const legacy = { tools: undefined, functions: [WEATHER.function], function_call: 'auto' }
  const j = await (await postJson(`${h.url}/v1/chat/completions`, body(legacy))).json() as Record<string, any>
  t.same(j.choices[0].message.function_call, { name: 'get_weather', arguments: '{"city":"Paris"}' })
  t.equal(j.choices[0].message.tool_calls, undefined)
  t.equal(j.choices[0].finish_reason, 'function_call')
  const { chunks } = await stream(h.url, body({ ...legacy, stream: true }))
  const deltas = chunks.map((c) => c.choices[0]?.delta).filter((d) => d?.function_call)
  t.same(deltas.map((d) => d.function_call), [{ name: 'get_weather', arguments: '' }, { arguments: '{"city":"Paris"}' }])
  t.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, 'function_call')
})

t.test('JSON mode: fences and prose stripped, schema checked, one retry, then 502 invalid_model_output', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  const schema = { type: 'json_schema', json_schema: { name: 'city', schema: { type: 'object', properties: { name: { type: 'string' }, population: { type: 'integer' } }, required: ['name', 'population'] }, strict: true } }
  h.sim.queue(email, { answer: 'Here it is:\n```json\n{"name": "Paris", "population": 2100000}\n```' })
  const ok = await (await postJson(`${h.url}/v1/chat/completions`, body({ tools: undefined, response_format: schema }))).json() as Record<string, any>
  t.equal(ok.choices[0].message.content, '{"name": "Paris", "population": 2100000}')
  t.match(prompts(h.sim)[0], /^# Output format\n/)

  h.sim.clearLog()
  h.sim.queue(email, { answer: '{"name": "Paris"}' }, { answer: 'Sure: {"name": "Paris", "population": 2}' })
  const s = await stream(h.url, body({ tools: undefined, response_format: schema, stream: true }))
  const content = s.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')
  t.equal(content, '{"name": "Paris", "population": 2}', 'the stream carries the validated JSON only')
  t.match(prompts(h.sim)[1], /- the JSON does not match the schema: must have required property 'population'/)

  h.sim.queue(email, { answer: 'I cannot.' }, { answer: 'Still no.' })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ tools: undefined, response_format: { type: 'json_object' } }))
  t.equal(res.status, 502)
  t.equal((await res.json() as { error: { code: string } }).error.code, 'invalid_model_output')
})

t.test('a tool round trip: the next turn sees the call and the result in the marker format', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 20, "note": "[TOOL CALL] is not a call here"}' },
    ],
  }))
  t.equal(res.status, 200)
  const sent = prompts(h.sim)[0]!
  t.match(sent, /^\[System\]\n# Tools\n/)
  t.match(sent, /\[Assistant\]\n\[TOOL CALL\]\n\{"name":"get_weather","arguments":\{"city":"Paris"\}\}\n\[END TOOL CALL\]\n\n\[TOOL RESULT get_weather call_1\]\n\{"temp": 20, "note": "\(TOOL CALL\) is not a call here"\}\n\[END TOOL RESULT\]$/)
})
