/**
 * The route schema type-checks every known Chat Completions field (400 `invalid_type` naming the field,
 * `invalid_value` for out-of-range values), with the gateway's own validator compiler: no coercion,
 * whatever Ajv options an embedding app uses. Values echoed in errors are cut.
 */
import Fastify from 'fastify'
import t from 'tap'
import qwenGateway from '../src/index.js'
import { defaultAnswer } from '../src/simulator/index.js'
import { clip, ECHO_LIMIT, InvalidRequestError, ModelNotFoundError, RouteNotFoundError, toOpenAIError } from '../src/errors.js'
import { createValidatorCompiler, validationError } from '../src/validation.js'
import { harness, postJson, sseData, startSim } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const upstreamTurns = (log: Array<{ path: string }>): number => log.filter((e) => e.path === '/api/v2/chat/completions').length
type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } }

t.test('wrong types in known fields: 400 invalid_type naming the field, nothing reaches the upstream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const url = `${h.url}/v1/chat/completions`
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ temperature: 'hot' }, 'temperature'],
    [{ tools: 'get_weather' }, 'tools'],
    [{ tools: {} }, 'tools'],
    [{ tool_choice: 42 }, 'tool_choice'],
    [{ stream: 'true' }, 'stream'],
    [{ stream: 1 }, 'stream'],
    [{ model: 5 }, 'model'],
    [{ stream_options: 'x' }, 'stream_options'],
    [{ stream: true, stream_options: { include_usage: 'yes' } }, 'stream_options.include_usage'],
    [{ reasoning_effort: 3 }, 'reasoning_effort'],
    [{ top_p: [1] }, 'top_p'],
    [{ n: '1' }, 'n'],
    [{ n: 1.5 }, 'n'],
    [{ max_tokens: '50' }, 'max_tokens'],
    [{ max_completion_tokens: true }, 'max_completion_tokens'],
    [{ presence_penalty: '0' }, 'presence_penalty'],
    [{ frequency_penalty: {} }, 'frequency_penalty'],
    [{ logit_bias: [] }, 'logit_bias'],
    [{ logit_bias: { 50256: 'ban' } }, 'logit_bias.50256'],
    [{ logprobs: 'no' }, 'logprobs'],
    [{ top_logprobs: 'two' }, 'top_logprobs'],
    [{ seed: 'lucky' }, 'seed'],
    [{ user: 7 }, 'user'],
    [{ stop: 5 }, 'stop'],
    [{ stop: ['a', 1] }, 'stop[1]'],
    [{ tools: [{ type: 'function', function: { name: 5 } }] }, 'tools[0].function.name'],
    [{ tools: ['get_weather'] }, 'tools[0]'],
    [{ parallel_tool_calls: 'false' }, 'parallel_tool_calls'],
    [{ functions: {} }, 'functions'],
    [{ function_call: 1 }, 'function_call'],
    [{ response_format: 'json' }, 'response_format'],
    [{ response_format: { type: 1 } }, 'response_format.type'],
    [{ modalities: 'text' }, 'modalities'],
    [{ metadata: 'x' }, 'metadata'],
    [{ store: 'yes' }, 'store'],
    [{ service_tier: 1 }, 'service_tier'],
    [{ prediction: 'x' }, 'prediction'],
    [{ audio: true }, 'audio'],
    [{ web_search_options: [] }, 'web_search_options'],
    [{ verbosity: 1 }, 'verbosity'],
    [{ messages: 'hi' }, 'messages'],
    [{ messages: ['hi'] }, 'messages[0]'],
    [{ messages: [{ role: 5, content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user', content: 42 }] }, 'messages[0].content'],
    [{ messages: [{ role: 'user', content: { type: 'text', text: 'x' } }] }, 'messages[0].content'],
    [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 5 }] }] }, 'messages[0].content[1].text'],
    [{ messages: [{ role: 'user', content: ['plain'] }] }, 'messages[0].content[0]'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: 5 }] }] }, 'messages[0].content[0].image_url'],
    [{ messages: [{ role: 'user', content: 'x', name: 1 }] }, 'messages[0].name'],
    [{ messages: [{ role: 'assistant', content: null, tool_calls: {} }, { role: 'user', content: 'x' }] }, 'messages[0].tool_calls'],
    [{ messages: [{ role: 'tool', tool_call_id: 1, content: 'x' }] }, 'messages[0].tool_call_id'],
  ]
  for (const [extra, param] of cases) {
    const res = await postJson(url, body(extra))
    const label = JSON.stringify(extra).slice(0, 80)
    t.equal(res.status, 400, `${label}: 400`)
    t.match(res.headers.get('content-type'), /^application\/json/, `${label}: JSON, not a stream`)
    const j = await res.json() as ErrorBody
    t.same([j.error.type, j.error.code, j.error.param], ['invalid_request_error', 'invalid_type', param], `${label}: ${j.error.message}`)
    t.match(j.error.message, /^Invalid type for '.+': expected .+, but got .+ instead\.$/)
  }
  t.equal(upstreamTurns(h.sim.log()), 0, 'no mistyped request reached the upstream')
})

t.test('out-of-range and missing values keep invalid_value; refused features keep unsupported_parameter', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const url = `${h.url}/v1/chat/completions`
  const cases: Array<[unknown, string | null, string]> = [
    [body({ model: '' }), 'model', 'invalid_value'],
    [body({ messages: [] }), 'messages', 'invalid_value'],
    [{ model: 'qwen3-max' }, 'messages', 'invalid_value'],
    [body({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop', 'invalid_value'],
    [body({ tools: [{ type: 'function', function: {} }] }), 'tools[0].function.name', 'invalid_value'],
    [body({ response_format: {} }), 'response_format.type', 'invalid_value'],
    [body({ n: 0 }), 'n', 'invalid_value'],
    [body({ n: 2 }), 'n', 'invalid_value'],
    [body({ max_tokens: -1 }), 'max_tokens', 'invalid_value'],
    [body({ messages: [{ role: 'wizard', content: 'x' }] }), 'messages[0].role', 'invalid_value'],
    [body({ tools: [{ type: 'custom', custom: { name: 'apply_patch' } }] }), 'tools[0].type', 'unsupported_parameter'],
    [body({ tool_choice: { type: 'function', function: { name: 'f' } } }), 'tool_choice', 'invalid_value'],
    [body({ response_format: { type: 'sound' } }), 'response_format.type', 'unsupported_parameter'],
    [body({ messages: [{ role: 'user', content: [{ type: 'input_image', image_url: { url: 'https://x/y.png' } }] }] }), 'messages[0].content[0]', 'unsupported_parameter'],
    [body({ messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc' } }] }] }), 'messages[0].content[0]', 'invalid_file'],
    [body({ audio: { voice: 'alloy', format: 'mp3' } }), 'audio', 'unsupported_parameter'],
  ]
  for (const [payload, param, code] of cases) {
    const res = await postJson(url, payload)
    const label = JSON.stringify(payload).slice(0, 100)
    t.equal(res.status, 400, `${label}: 400`)
    const j = await res.json() as ErrorBody
    t.same([j.error.code, j.error.param], [code, param], `${label}: ${j.error.message}`)
  }
  const notObject = await postJson(url, ['not', 'an', 'object'])
  t.equal(notObject.status, 400)
  t.same(((await notObject.json()) as ErrorBody).error.code, 'invalid_type', 'a body that is not an object is a wrong type')
  t.equal(upstreamTurns(h.sim.log()), 0)
})

t.test('every known field with the right type (or null), plus unknown fields, is accepted', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const url = `${h.url}/v1/chat/completions`
  const full = body({
    messages: [
      { role: 'developer', content: [{ type: 'text', text: 'Be brief.' }], name: 'dev' },
      { role: 'user', content: 'What is 2+2?', name: null },
      { role: 'assistant', content: null, reasoning_content: 'hmm', refusal: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'calc', arguments: '{"x":1}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: '4' }] },
      { role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }], function_call: { name: 'calc', arguments: { x: 1 } }, audio: null },
      { role: 'user', content: [{ type: 'text', text: 'hi', prompt_cache_breakpoint: true }] },
    ],
    stream: false, stream_options: null, temperature: 0.7, top_p: 1, n: 1, stop: ['NEVER'], max_tokens: 1000, max_completion_tokens: null,
    presence_penalty: 0, frequency_penalty: -0.5, logit_bias: { 50256: -100 }, logprobs: false, top_logprobs: null, seed: 42, user: 'u-1',
    tools: [], tool_choice: 'none', parallel_tool_calls: true, functions: null, function_call: 'none',
    response_format: { type: 'text' }, reasoning_effort: 'low', verbosity: 'low', modalities: ['text'], audio: null,
    metadata: { trace: 'abc' }, store: false, service_tier: 'auto', prediction: { type: 'content', content: 'x' },
    web_search_options: {}, prompt_cache_key: 'k', prompt_cache_retention: '24h', safety_identifier: 'h',
    some_future_field: { anything: [1, 'two'] }, x_vendor_flag: 'on',
  })
  const res = await postJson(url, full)
  t.equal(res.status, 200, await res.clone().text())
  const j = await res.json() as { choices: Array<{ message: { content: string } }> }
  t.type(j.choices[0]!.message.content, 'string')
  const nulls = await postJson(url, body({ stream: null, temperature: null, tools: null, tool_choice: null, response_format: null, reasoning_effort: null, stop: null, n: null }))
  t.equal(nulls.status, 200, 'null stands for "not set" in every optional field')
  t.equal(upstreamTurns(h.sim.log()), 2)
})

t.test('an embedding app\'s Ajv options cannot loosen the gateway\'s validation', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const host = Fastify({ logger: false, ajv: { customOptions: { coerceTypes: 'array', removeAdditional: 'all' } } })
  host.post('/host/echo', { schema: { body: { type: 'object', properties: { n: { type: 'integer' } } } } }, async (request) => request.body)
  await host.register(qwenGateway, { prefix: '/qwen', qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie) })
  t.teardown(() => host.close())
  await host.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(host.server.address() as { port: number }).port}`

  const hostEcho = await postJson(`${base}/host/echo`, { n: '5', extra: 1 })
  t.same(await hostEcho.json(), { n: 5 }, 'the host\'s own routes keep its coercing, stripping Ajv')

  const url = `${base}/qwen/v1/chat/completions`
  const stream = await postJson(url, body({ stream: 'true' }))
  t.equal(stream.status, 400, 'stream: "true" is not coerced into a stream')
  t.match(stream.headers.get('content-type'), /^application\/json/)
  t.same(((await stream.json()) as ErrorBody).error, {
    message: "Invalid type for 'stream': expected a boolean or null, but got a string instead.",
    type: 'invalid_request_error',
    param: 'stream',
    code: 'invalid_type',
  })
  for (const [extra, param] of [[{ temperature: '0.5' }, 'temperature'], [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'], [{ stop: 7 }, 'stop']] as const) {
    const res = await postJson(url, body(extra))
    t.equal(res.status, 400)
    t.same(((await res.json()) as ErrorBody).error.param, param, `${param} is not coerced`)
  }
  t.equal(upstreamTurns(sim.log()), 0)

  const ok = await postJson(url, body({ stream: true, stream_options: { include_usage: true } }))
  t.equal(ok.status, 200)
  const chunks = sseData(await ok.text()).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d))
  t.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), defaultAnswer('hi'))
  t.ok(chunks.at(-1).usage, 'stream_options survives the host\'s removeAdditional')
})

t.test('values echoed in errors are cut', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const url = `${h.url}/v1/chat/completions`
  const huge = 'm'.repeat(1024 * 1024)
  const model = await postJson(url, body({ model: huge }))
  t.equal(model.status, 404)
  const me = ((await model.json()) as ErrorBody).error
  t.equal(me.code, 'model_not_found')
  t.ok(me.message.length < 300, `404 message is short (${me.message.length} chars)`)
  t.match(me.message, `\`${'m'.repeat(ECHO_LIMIT)}…\``)

  for (const extra of [
    { messages: [{ role: huge, content: 'x' }] },
    { messages: [{ role: 'user', content: [{ type: huge }] }] },
    { response_format: { type: huge } },
    { logit_bias: { [huge]: 'x' } },
  ]) {
    const res = await postJson(url, body(extra))
    t.equal(res.status, 400)
    const text = await res.text()
    t.ok(text.length < 600, `400 body is short (${text.length} chars)`)
    t.notMatch(text, 'm'.repeat(ECHO_LIMIT + 1))
  }
  const route = await fetch(`${h.url}/${'p'.repeat(8000)}`)
  t.equal(route.status, 404)
  t.ok((await route.text()).length < 600, 'unknown URLs are cut too')
})

t.test('clip and the error helpers', async (t) => {
  t.equal(clip('short'), 'short')
  t.equal(clip('x'.repeat(ECHO_LIMIT)), 'x'.repeat(ECHO_LIMIT))
  t.equal(clip('x'.repeat(ECHO_LIMIT + 1)), `${'x'.repeat(ECHO_LIMIT)}…`)
  t.equal(clip(12345, 3), '123…')
  t.equal(new ModelNotFoundError('y'.repeat(5000)).message.length < 200, true)
  t.ok(new RouteNotFoundError('GET', `/${'z'.repeat(5000)}?q=1`).message.length < 300)
  t.equal(validationError([]).message, 'Invalid request body')
  // Another compiler's Ajv errors (not the gateway's) still map onto the codes.
  const typeErr = toOpenAIError(Object.assign(new Error('body/n must be integer'), { statusCode: 400, validation: [{ keyword: 'type', instancePath: '/n' }] }))
  t.same([typeErr.body.error.code, typeErr.body.error.param], ['invalid_type', 'n'])
  const minErr = toOpenAIError(Object.assign(new Error('too small'), { statusCode: 400, validation: [{ keyword: 'minimum', instancePath: '/a/0/b' }] }))
  t.same([minErr.body.error.code, minErr.body.error.param], ['invalid_value', 'a[0].b'])
})

t.test('the compiler: querystrings and params are coerced from strings, bodies never', async (t) => {
  const compile = createValidatorCompiler()
  const schema = { type: 'object', properties: { n: { type: 'integer' } } }
  const query = compile({ schema, httpPart: 'querystring', method: 'GET', url: '/' })
  const q = { n: '5' }
  t.equal(query(q), true)
  t.same(q, { n: 5 })
  const bodyCheck = compile({ schema, httpPart: 'body', method: 'POST', url: '/' })
  const result = bodyCheck({ n: '5' }) as { error: InvalidRequestError }
  t.type(result.error, InvalidRequestError)
  t.same([result.error.code, result.error.param, result.error.statusCode], ['invalid_type', 'n', 400])
  const params = compile({ schema: { type: 'object', properties: { id: { type: 'string', minLength: 2 } } }, httpPart: 'params', method: 'GET', url: '/:id' })
  const bad = params({ id: 'x' }) as { error: InvalidRequestError }
  t.same([bad.error.code, bad.error.param], ['invalid_value', 'id'])
  t.match(bad.error.message, /^Invalid value for 'id': must NOT have fewer than 2 characters\.$/)
  const root = bodyCheck('text') as { error: InvalidRequestError }
  t.same([root.error.code, root.error.param, root.error.message], ['invalid_type', null, 'Invalid type for the request body: expected an object, but got a string instead.'])
})
