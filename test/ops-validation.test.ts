/**
 * Strict request validation, as issue 11 tried it: a wrong type in a known field is 400
 * `invalid_request_error` / `invalid_type` naming the field, before anything reaches the upstream
 * (no chat created, no completion), streamed or not; unknown fields stay accepted.
 */
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } }

const WRONG: Array<[string, unknown]> = [
  ['temperature', 'hot'], ['tools', 'get_weather'], ['tool_choice', 42],
  ['top_p', 'high'], ['max_tokens', '100'], ['n', 'two'], ['stream', 'yes'], ['response_format', 'json_object'],
  ['stop', 7], ['stream_options', true], ['reasoning_effort', 1], ['user', { id: 1 }], ['metadata', 'x'],
  ['max_completion_tokens', 1.5], ['presence_penalty', 'none'], ['seed', 'abc'], ['parallel_tool_calls', 'no'],
]

t.test('wrong types in known fields: 400 invalid_type naming the field, nothing reaches the upstream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: 'sk-a' } })
  h.sim.clearLog()
  const headers = { authorization: 'Bearer sk-a' }
  for (const stream of [false, true]) {
    for (const [field, value] of WRONG) {
      const r = await postJson(`${h.url}/v1/chat/completions`, body({ stream, [field]: value }), headers)
      t.equal(r.status, 400, `${field}: ${JSON.stringify(value)} (stream ${stream})`)
      const e = await r.json() as ErrorBody
      t.same([e.error.type, e.error.code, e.error.param], ['invalid_request_error', 'invalid_type', field], `${field}: named`)
    }
  }
  // (The model list is fetched in the background at start-up; it is not these requests' doing.)
  t.same(h.sim.log().map((e) => e.path).filter((p) => !/models/.test(p)), [], 'no chat created, no completion sent')

  const fine = await postJson(`${h.url}/v1/chat/completions`, body({ temperature: 0.3, x_vendor_extension: { any: 'thing' } }), headers)
  t.equal(fine.status, 200, 'unknown fields are accepted and ignored')
})
