import t from 'tap'
import { InvalidRequestError, UnsupportedParameterError } from '../src/errors.js'
import { foldMessages, prepareChat, thinkingFor, type ChatRequest } from '../src/openai/request.js'
import type { ResolvedModel } from '../src/models.js'

// `prepareChat` is also tested with bodies the route schema would refuse (defence in depth), hence the cast.
const base = (extra: Record<string, unknown> = {}): ChatRequest => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra }) as ChatRequest

t.test('a single user message is sent unchanged', async (t) => {
  t.equal(foldMessages([{ role: 'user', content: 'Hello there' }]), 'Hello there')
})

t.test('system and developer text goes before the single user message', async (t) => {
  t.equal(foldMessages([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'part one' }, { type: 'text', text: 'part two' }] },
    { role: 'developer', content: 'Answer in English.' },
  ]), 'Be brief.\n\nAnswer in English.\n\npart one\npart two')
})

t.test('longer conversations fold into role-labelled blocks, system first', async (t) => {
  const folded = foldMessages([
    { role: 'user', content: 'What is the weather in Paris?' },
    { role: 'system', content: 'You are helpful.' },
    { role: 'assistant', content: null, reasoning_content: 'secret thoughts', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp":20}' },
    { role: 'assistant', content: 'It is 20 degrees.' },
    { role: 'user', content: 'Thanks!' },
  ])
  t.equal(folded, [
    '[System]\nYou are helpful.',
    '[User]\nWhat is the weather in Paris?',
    '[Assistant]\n[TOOL CALL]\n{"name":"get_weather","arguments":{"city":"Paris"}}\n[END TOOL CALL]',
    '[TOOL RESULT get_weather call_1]\n{"temp":20}\n[END TOOL RESULT]',
    '[Assistant]\nIt is 20 degrees.',
    '[User]\nThanks!',
  ].join('\n\n'))
  t.notMatch(folded, /secret thoughts/, 'reasoning_content is dropped')
})

t.test('honoured fields', async (t) => {
  const p = prepareChat(base({ stream: true, stream_options: { include_usage: true }, stop: ['END', ''], max_tokens: 50, reasoning_effort: 'minimal' }))
  t.equal(p.stream, true)
  t.equal(p.includeUsage, true)
  t.same(p.stop, ['END'])
  t.equal(p.maxTokens, 50)
  t.equal(p.thinkingOverride, false)
  t.equal(prepareChat(base({ max_completion_tokens: 7, max_tokens: 50 })).maxTokens, 7, 'max_completion_tokens wins')
  t.equal(prepareChat(base()).stream, false, 'stream defaults to false')
  t.equal(prepareChat(base({ stream_options: { include_usage: true } })).includeUsage, false, 'include_usage only applies to streams')
  t.equal(prepareChat(base({ reasoning_effort: 'high' })).thinkingOverride, true)
  t.equal(prepareChat(base({ stop: 'x' })).stop[0], 'x')
})

t.test('accepted and ignored fields', async (t) => {
  t.doesNotThrow(() => prepareChat(base({
    temperature: 0.2, top_p: 1, store: false, metadata: { a: 1 }, parallel_tool_calls: false, tool_choice: 'none', tools: [],
    response_format: { type: 'text' }, modalities: ['text'], verbosity: 'low', prompt_cache_key: 'k', foo_bar: 1, n: 1, user: 'u',
  })))
})

t.test('refusals name the field', async (t) => {
  const cases: Array<[Record<string, unknown>, string, typeof InvalidRequestError]> = [
    [{ tools: [{ type: 'custom', custom: { name: 'f' } }] }, 'tools[0].type', UnsupportedParameterError],
    [{ tool_choice: 'required' }, 'tool_choice', InvalidRequestError],
    [{ response_format: { type: 'sound' } }, 'response_format.type', UnsupportedParameterError],
    [{ modalities: ['text', 'audio'] }, 'modalities', UnsupportedParameterError],
    [{ n: 2 }, 'n', InvalidRequestError],
    [{ n: 0 }, 'n', InvalidRequestError],
    [{ max_tokens: -1 }, 'max_tokens', InvalidRequestError],
    [{ stop: [1] }, 'stop', InvalidRequestError],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role', InvalidRequestError],
    [{ messages: [{ role: 'user' }] }, 'messages[0].content', InvalidRequestError],
    [{ messages: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }] }, 'messages[0].content[0]', UnsupportedParameterError],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }] }] }, 'messages[0].content[0]', InvalidRequestError],
    [{ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'flac' } }] }] }, 'messages[0].content[0]', InvalidRequestError],
    [{ messages: [{ role: 'user', content: [{ type: 'mystery' }] }] }, 'messages[0].content[0].type', InvalidRequestError],
    [{ messages: [{ role: 'user', content: 42 }] }, 'messages[0].content', InvalidRequestError],
    [{ messages: [{ role: 'user', content: '   ' }] }, 'messages', InvalidRequestError],
  ]
  for (const [extra, param, cls] of cases) {
    try {
      prepareChat(base(extra))
      t.fail(`expected ${param} to be refused`)
    } catch (err) {
      t.type(err, cls, `${param}: ${(err as Error).message}`)
      t.equal((err as InvalidRequestError).param, param)
      t.equal((err as InvalidRequestError).statusCode, 400)
    }
  }
})

t.test('thinking follows the model name unless reasoning_effort decides', async (t) => {
  const m = (thinking: boolean, capable: boolean): ResolvedModel => ({ requested: 'x', base: 'x', thinking, search: false, chatType: 't2t', capabilities: { thinking: capable, search: false, vision: false } })
  t.equal(thinkingFor(m(true, true), undefined), true)
  t.equal(thinkingFor(m(false, true), undefined), false)
  t.equal(thinkingFor(m(false, true), true), true)
  t.equal(thinkingFor(m(true, true), false), false)
  t.equal(thinkingFor(m(false, false), true), false, 'a model that cannot think never does')
})
