/** Responses API request → Chat Completions request, including the Codex CLI request body. */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { InvalidRequestError } from '../src/errors.js'
import { toChatRequest } from '../src/responses/request.js'
import type { ResponsesRequest } from '../src/responses/schemas.js'
import { customInput, customToolParameters } from '../src/responses/tools.js'

const codex = JSON.parse(readFileSync(new URL('./fixtures/codex-responses-request.json', import.meta.url), 'utf8')) as ResponsesRequest
type Loose = Record<string, unknown>
const base = (extra: Loose = {}): ResponsesRequest => ({ model: 'qwen3-max', input: 'hi', ...extra }) as ResponsesRequest

t.test('a string input with instructions and options', async (t) => {
  const { chat, customTools } = toChatRequest(base({
    instructions: 'Be brief.',
    max_output_tokens: 50,
    temperature: 0.3,
    top_p: 0.8,
    user: 'u',
    stream: true,
    reasoning: { effort: 'none' },
    text: { format: { type: 'text' } },
  }))
  t.same(chat, {
    model: 'qwen3-max',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }],
    stream: true,
    reasoning_effort: 'none',
    max_tokens: 50,
    temperature: 0.3,
    top_p: 0.8,
    user: 'u',
  })
  t.equal(customTools.size, 0)
})

t.test('the Codex request: tools, history items, and what is left out', async (t) => {
  const { chat, customTools } = toChatRequest(codex)
  t.same([...customTools], ['apply_patch'])
  t.same(chat.tools!.map((x) => x.function!.name), ['shell', 'apply_patch', 'update_plan'], 'web_search, local_shell and namespace tools are left out')
  const patch = chat.tools![1]!.function!
  t.equal(patch.description, codex.tools![1]!.description)
  t.same((patch.parameters as any).required, ['input'])
  t.match((patch.parameters as any).properties.input.description, /grammar \(lark\):\nstart: begin_patch/)
  t.equal(chat.tool_choice, 'auto')
  t.equal(chat.parallel_tool_calls, false)
  t.equal(chat.reasoning_effort, 'medium')
  t.equal(chat.stream, true)
  t.same(chat.messages, [
    { role: 'system', content: codex.instructions },
    { role: 'developer', content: (codex.input as any)[0].content[0].text },
    { role: 'user', content: (codex.input as any)[1].content[0].text },
    { role: 'user', content: 'Rename the greet function in src/hello.ts to welcome.' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_shell_1', type: 'function', function: { name: 'shell', arguments: (codex.input as any)[4].arguments } }],
    },
    { role: 'tool', tool_call_id: 'call_shell_1', content: (codex.input as any)[5].output },
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_patch_1', type: 'function', function: { name: 'apply_patch', arguments: JSON.stringify({ input: (codex.input as any)[6].input }) } }],
    },
    { role: 'tool', tool_call_id: 'call_patch_1', content: (codex.input as any)[7].output },
    { role: 'assistant', content: 'Renamed greet to welcome in src/hello.ts.' },
    { role: 'user', content: 'Now list the files in src.' },
  ], 'reasoning and web_search_call items are left out')
})

t.test('message items: roles without type, parts, assistant text followed by calls', async (t) => {
  const { chat } = toChatRequest(base({
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'look' }, { type: 'input_image', image_url: 'data:image/png;base64,AA' }, { type: 'input_file', file_data: 'data:application/pdf;base64,JV', filename: 'a.pdf' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Calling' }, { type: 'refusal', refusal: 'no' }] },
      { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
      { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"a":1}' },
      { type: 'function_call_output', call_id: 'c1', output: [{ type: 'input_text', text: 'one' }, { type: 'input_image', image_url: 'x' }] },
      { type: 'function_call_output', call_id: 'c2', output: 'two' },
      { role: 'system', content: 'late system' },
      { type: 'input_file', file_id: 'f' },
      { type: 'item_reference', id: 'rs_1' },
    ],
  }))
  t.same(chat.messages, [
    { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }, { type: 'file', file: { file_data: 'data:application/pdf;base64,JV', filename: 'a.pdf' } }] },
    {
      role: 'assistant',
      content: 'Calling\nno',
      tool_calls: [
        { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } },
        { id: 'c2', type: 'function', function: { name: 'g', arguments: '{"a":1}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'c1', content: 'one' },
    { role: 'tool', tool_call_id: 'c2', content: 'two' },
    { role: 'system', content: 'late system' },
  ])
})

t.test('tool_choice and text.format', async (t) => {
  const tools = [{ type: 'function', name: 'f', parameters: { type: 'object' }, strict: true }, { type: 'custom', name: 'raw' }]
  const choice = (tool_choice: unknown) => toChatRequest(base({ tools, tool_choice })).chat.tool_choice
  t.equal(choice('required'), 'required')
  t.equal(choice('none'), 'none')
  t.same(choice({ type: 'function', name: 'f' }), { type: 'function', function: { name: 'f' } })
  t.same(choice({ type: 'custom', name: 'raw' }), { type: 'function', function: { name: 'raw' } })
  t.equal(choice({ type: 'allowed_tools', mode: 'required', tools: [] }), 'required')
  t.equal(choice({ type: 'allowed_tools', mode: 'auto', tools: [] }), 'auto')
  t.equal(choice({ type: 'web_search_preview' }), 'auto')
  t.equal(choice(undefined), undefined)
  const r = toChatRequest(base({ tools }))
  t.same(r.chat.tools![0], { type: 'function', function: { name: 'f', parameters: { type: 'object' }, strict: true } })
  t.same(r.chat.tools![1]!.function!.parameters, customToolParameters(undefined))
  t.notOk('tools' in toChatRequest(base({ tools: [{ type: 'web_search' }], tool_choice: 'required', parallel_tool_calls: true })).chat, 'no servable tools: no tools, no choice')
  t.same(toChatRequest(base({ tools: [{ type: 'function', name: 'n' }] })).chat.tools![0]!.function!.parameters, { type: 'object', properties: {} })

  const fmt = (format: any) => toChatRequest(base({ text: { format } })).chat.response_format
  t.same(fmt({ type: 'json_object' }), { type: 'json_object' })
  t.same(fmt({ type: 'json_schema', name: 'person', description: 'd', schema: { type: 'object' }, strict: true }), {
    type: 'json_schema', json_schema: { name: 'person', description: 'd', schema: { type: 'object' }, strict: true },
  })
  t.same(fmt({ type: 'json_schema' }), { type: 'json_schema', json_schema: { name: 'response' } })
})

t.test('bad input is a 400 naming the field; stateful options are refused', async (t) => {
  const cases: Array<[Loose, string, string]> = [
    [{ conversation: 'conv_1' }, 'conversation', 'unsupported_parameter'],
    [{ input: [] }, 'input', 'invalid_value'],
    [{ input: [{ content: 'x' }] }, 'input[0].type', 'invalid_value'],
    [{ input: [{ type: 'message', content: 'x' }] }, 'input[0].role', 'invalid_value'],
    [{ input: [{ role: 'tool', content: 'x' }] }, 'input[0].role', 'invalid_value'],
    [{ input: [{ role: 'user', content: 5 }] }, 'input[0].content', 'invalid_value'],
    [{ input: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'input[0].content[0].type', 'invalid_value'],
    [{ input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'input[0].content[0].text', 'invalid_value'],
    [{ input: [{ type: 'function_call', call_id: 'c', name: 'f' }] }, 'input[0].arguments', 'invalid_value'],
    [{ input: [{ type: 'custom_tool_call', call_id: 'c', name: 'f', input: 3 }] }, 'input[0].input', 'invalid_value'],
    [{ input: [{ type: 'function_call_output', call_id: 'c', output: 3 }] }, 'input[0].output', 'invalid_value'],
    [{ input: [{ type: 'function_call_output', output: 'x' }] }, 'input[0].call_id', 'invalid_value'],
    [{ tools: [{ type: 'function' }] }, 'tools[0].name', 'invalid_value'],
    [{ tools: [{ type: 'function', name: 'f' }], tool_choice: 'sometimes' }, 'tool_choice', 'invalid_value'],
    [{ tools: [{ type: 'function', name: 'f' }], tool_choice: { type: 'function' } }, 'tool_choice.name', 'invalid_value'],
    [{ text: { format: { type: 'xml' } } }, 'text.format.type', 'invalid_value'],
  ]
  for (const [extra, param, code] of cases) {
    let caught: unknown
    try { toChatRequest(base(extra)) } catch (e) { caught = e }
    t.ok(caught instanceof InvalidRequestError, param)
    t.match(caught, { param, code, statusCode: 400 }, param)
  }
})

t.test('custom tools: grammar in the description, raw input back', async (t) => {
  t.notMatch((customToolParameters({ type: 'text' }) as any).properties.input.description, /grammar/)
  t.match((customToolParameters({ type: 'grammar', definition: 'start: /x/' }) as any).properties.input.description, /grammar:\nstart: \/x\//)
  const call = (args: string) => ({ index: 0, id: 'call_1', name: 'apply_patch', arguments: args })
  t.equal(customInput(call('{"input":"*** Begin Patch"}')), '*** Begin Patch')
  t.equal(customInput(call('{"patch":"x"}')), '{"patch":"x"}', 'no input key: the whole argument text')
  t.equal(customInput(call('not json')), 'not json')
})
