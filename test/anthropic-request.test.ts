/** Anthropic Messages request → Chat Completions request (table of shapes Claude Code and the SDK send). */
import t from 'tap'
import { countTokensChatRequest, toChatRequest } from '../src/anthropic/request.js'
import type { MessagesRequest } from '../src/anthropic/schemas.js'
import { InvalidRequestError } from '../src/errors.js'

/** Request bodies as clients send them (unknown fields included), typed as the route's schema. */
type Loose = Record<string, unknown>
const base = (extra: Loose = {}): MessagesRequest => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 1024,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
}) as MessagesRequest

/** The `param` of the 400 a call throws. */
function paramOf (fn: () => unknown): unknown {
  try { fn() } catch (e) { return e instanceof InvalidRequestError ? e.param : e }
  return undefined
}

t.test('a plain request: system string, one user turn, options mapped', async (t) => {
  const r = toChatRequest(base({
    system: 'Be brief.',
    stop_sequences: ['END'],
    temperature: 0.2,
    top_p: 0.9,
    top_k: 5,
    stream: true,
    metadata: { user_id: 'u1' },
  }))
  t.same(r, {
    model: 'claude-sonnet-4-5',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }],
    stream: true,
    stop: ['END'],
    max_tokens: 1024,
    temperature: 0.2,
    top_p: 0.9,
    user: 'u1',
  })
})

t.test('system as text blocks (with cache_control), user text blocks joined', async (t) => {
  const r = toChatRequest(base({
    system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Be careful.' }],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two', cache_control: { type: 'ephemeral' } }] }],
  }))
  t.same(r.messages, [
    { role: 'system', content: 'You are Claude Code.\nBe careful.' },
    { role: 'user', content: 'one\ntwo' },
  ])
  t.equal(r.stream, false)
  t.notOk('stop' in r)
})

t.test('tool_use and tool_result map onto tool_calls and tool messages; thinking blocks are dropped', async (t) => {
  const r = toChatRequest(base({
    tools: [
      { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
      { name: 'no_schema' },
      { type: 'web_search_20250305', name: 'web_search' },
      { type: 'custom', name: 'custom_one', input_schema: { type: 'object' } },
    ],
    tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'let me call', signature: 'sig' },
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'no_schema' },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18°C' }] },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'boom', is_error: true },
          { type: 'text', text: 'Thanks' },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_3' }] },
    ],
  }))
  t.same(r.tools, [
    { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    { type: 'function', function: { name: 'no_schema', parameters: { type: 'object', properties: {} } } },
    { type: 'function', function: { name: 'custom_one', parameters: { type: 'object' } } },
  ], 'server tools are left out')
  t.equal(r.tool_choice, 'auto')
  t.equal(r.parallel_tool_calls, false)
  t.same(r.messages, [
    { role: 'user', content: 'Weather in Paris?' },
    {
      role: 'assistant',
      content: 'Checking.',
      tool_calls: [
        { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'toolu_2', type: 'function', function: { name: 'no_schema', arguments: '{}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'toolu_1', content: '18°C' },
    { role: 'tool', tool_call_id: 'toolu_2', content: 'Error: boom' },
    { role: 'user', content: 'Thanks' },
    { role: 'tool', tool_call_id: 'toolu_3', content: '' },
  ])
})

t.test('tool_choice kinds', async (t) => {
  const tools = [{ name: 'f', input_schema: { type: 'object' } }]
  t.same(toChatRequest(base({ tools, tool_choice: { type: 'any' } })).tool_choice, 'required')
  t.same(toChatRequest(base({ tools, tool_choice: { type: 'none' } })).tool_choice, 'none')
  t.same(toChatRequest(base({ tools, tool_choice: { type: 'tool', name: 'f' } })).tool_choice, { type: 'function', function: { name: 'f' } })
  t.notOk('tool_choice' in toChatRequest(base({ tools })))
  t.notOk('tools' in toChatRequest(base({ tools: [{ type: 'bash_20250124', name: 'bash' }], tool_choice: { type: 'any' } })), 'only server tools: no tools, no choice')
  t.equal(paramOf(() => toChatRequest(base({ tools, tool_choice: { type: 'tool' } }))), 'tool_choice.name')
  t.equal(paramOf(() => toChatRequest(base({ tools, tool_choice: { type: 'sometimes' } }))), 'tool_choice.type')
})

t.test('thinking option → reasoning_effort', async (t) => {
  t.equal(toChatRequest(base({ thinking: { type: 'enabled', budget_tokens: 2048 } })).reasoning_effort, 'medium')
  t.equal(toChatRequest(base({ thinking: { type: 'adaptive' } })).reasoning_effort, 'medium')
  t.equal(toChatRequest(base({ thinking: { type: 'disabled' } })).reasoning_effort, 'none')
  t.notOk('reasoning_effort' in toChatRequest(base()))
  t.equal(paramOf(() => toChatRequest(base({ thinking: { type: 'maybe' } }))), 'thinking.type')
})

t.test('images and documents become the OpenAI parts that carry them', async (t) => {
  const r = toChatRequest(base({
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'What is this?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
        { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBE' } },
        { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'plain doc' } },
      ],
    }],
  }))
  t.same(r.messages[0]!.content, [
    { type: 'text', text: 'What is this?' },
    { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
    { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
    { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE' } },
    { type: 'text', text: 'plain doc' },
  ])
  const assistant = toChatRequest(base({
    messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'image', source: { type: 'url', url: 'u' } }] }],
  }))
  t.same(assistant.messages[1], { role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'u' } }] })
})

t.test('bad input is a 400 naming the field', async (t) => {
  const cases: Array<[Loose, string]> = [
    [{ messages: [{ role: 'system', content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 'messages[0].content[0].text'],
    [{ messages: [{ role: 'user', content: [{ type: 'image' }] }] }, 'messages[0].content[0].source'],
    [{ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }, 'messages[0].content[0].source'],
    [{ messages: [{ role: 'user', content: [{ type: 'tool_result' }] }] }, 'messages[0].content[0].tool_use_id'],
    [{ messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'x' }] }] }, 'messages[0].content[0]'],
    [{ stop_sequences: ['a', 'b', 'c', 'd', 'e'] }, 'stop_sequences'],
    [{ max_tokens: 0 }, 'max_tokens'],
  ]
  for (const [extra, param] of cases) {
    let caught: unknown
    try { toChatRequest(base(extra)) } catch (e) { caught = e }
    t.ok(caught instanceof InvalidRequestError, param)
    t.match(caught, { param, statusCode: 400 }, param)
  }
})

t.test('count_tokens takes the conversation only', async (t) => {
  const r = countTokensChatRequest({ model: 'm', system: 'S', messages: [{ role: 'user', content: 'hi' }] })
  t.same(r, { model: 'm', messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'hi' }] })
})
