/**
 * Tool calling and structured output through the real client libraries (CONTRACT §6.7 item 4):
 * `openai@6.49.0` (`create` with tools, `.stream()`, the `runTools` loop), `ai` +
 * `@ai-sdk/openai-compatible` (`generateText`/`streamText` with tools, `generateObject` with zod),
 * `@langchain/openai` (`bindTools`, `withStructuredOutput`). The gateway talks to the simulator,
 * whose answers are scripted; only third-party code is on the assertion path.
 */
import t from 'tap'
import OpenAI from 'openai'
import { generateObject, generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { ChatOpenAI } from '@langchain/openai'
import { z } from 'zod'
import type { Simulator } from '../../src/simulator/index.js'
import { harness, type Harness } from '../helpers/setup.js'

const TIMEOUT_MS = 20_000
const WEATHER_PARAMS = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } as const
const CALL = (city: string) => `[TOOL CALL]\n{"name": "get_weather", "arguments": {"city": "${city}"}}\n[END TOOL CALL]`

function prompts (sim: Simulator): string[] {
  return sim.log().filter((e) => e.path === '/api/v2/chat/completions').map((e) => (e.body as { messages: Array<{ content: string }> }).messages[0]!.content)
}

async function setup (t: Parameters<typeof harness>[0], ...answers: string[]): Promise<Harness> {
  const h = await harness(t, { sim: { demoAccounts: 1, frameChars: 4 } })
  h.sim.queue(h.sim.accounts[0]!.email, ...answers.map((answer) => ({ answer })))
  return h
}

const openai = (h: Harness) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: TIMEOUT_MS })
const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_PARAMS } }]

t.test('openai: create with tools, non-stream and raw stream', async (t) => {
  const h = await setup(t, `Checking.\n${CALL('Paris')}`, CALL('Oslo'))
  const client = openai(h)
  const r = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools })
  const m = r.choices[0]!.message
  t.equal(r.choices[0]!.finish_reason, 'tool_calls')
  t.equal(m.content, 'Checking.\n')
  t.equal(m.tool_calls!.length, 1)
  const c = m.tool_calls![0]!
  t.ok(c.type === 'function' && c.function.name === 'get_weather')
  t.same(c.type === 'function' && JSON.parse(c.function.arguments), { city: 'Paris' })
  const s = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'Oslo?' }], tools, stream: true })
  const names: string[] = []
  let args = ''
  let finish: string | null = null
  for await (const chunk of s) {
    const d = chunk.choices[0]?.delta
    for (const tc of d?.tool_calls ?? []) {
      if (tc.function?.name) names.push(tc.function.name)
      args += tc.function?.arguments ?? ''
    }
    finish = chunk.choices[0]?.finish_reason ?? finish
  }
  t.same([names, JSON.parse(args), finish], [['get_weather'], { city: 'Oslo' }, 'tool_calls'])
})

t.test('openai: .stream() helper accumulates the call', async (t) => {
  const h = await setup(t, CALL('Rome'))
  const final = await openai(h).chat.completions.stream({ model: 'qwen3-max', messages: [{ role: 'user', content: 'Rome?' }], tools }).finalChatCompletion()
  const c = final.choices[0]!.message.tool_calls![0]!
  t.match(c.id, /^call_/)
  t.same(c.type === 'function' && [c.function.name, JSON.parse(c.function.arguments)], ['get_weather', { city: 'Rome' }])
  t.equal(final.choices[0]!.finish_reason, 'tool_calls')
})

t.test('openai: runTools completes a two-step loop', async (t) => {
  const h = await setup(t, CALL('Paris'), 'It is 20 degrees in Paris.')
  const runner = openai(h).chat.completions.runTools({
    model: 'qwen3-max',
    stream: true,
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { ...WEATHER_PARAMS, required: ['city'] }, function: (a: { city: string }) => ({ city: a.city, temp: 20 }), parse: JSON.parse } }],
  })
  t.equal(await runner.finalContent(), 'It is 20 degrees in Paris.')
  t.same(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant'])
  // The second step continues the upstream chat of the first (CONVERSATION_MODE=upstream): only the tool result is sent.
  const second = prompts(h.sim)[1]!
  t.match(second, /^\[TOOL RESULT get_weather call_[A-Za-z0-9]{24}\]\n\{"city":"Paris","temp":20\}\n\[END TOOL RESULT\]$/)
})

const compat = (h: Harness) => createOpenAICompatible({ name: 'gw', baseURL: `${h.url}/v1`, apiKey: 'x', includeUsage: true, supportsStructuredOutputs: true })
const aiTools = {
  get_weather: tool({
    description: 'Weather for a city',
    inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
    execute: async ({ city }) => ({ city, temp: 20 }),
  }),
}

t.test('ai: generateText and streamText with tools run the multi-step loop', async (t) => {
  const h = await setup(t, CALL('Paris'), 'Paris: 20 degrees.', `Let me see. ${CALL('Lima')}`, 'Lima: 20 degrees.')
  const model = compat(h).chatModel('qwen3-max')
  const g = await generateText({ model, prompt: 'Weather in Paris?', tools: aiTools, stopWhen: stepCountIs(3), maxRetries: 0 })
  t.equal(g.text, 'Paris: 20 degrees.')
  t.equal(g.steps.length, 2)
  t.equal(g.steps[0]!.finishReason, 'tool-calls')
  t.same(g.steps[0]!.toolCalls.map((c) => [c.toolName, c.input]), [['get_weather', { city: 'Paris' }]])
  t.ok(g.usage.inputTokens! > 0)
  const s = streamText({ model, prompt: 'Weather in Lima?', tools: aiTools, stopWhen: stepCountIs(3), maxRetries: 0 })
  const parts: string[] = []
  for await (const p of s.fullStream) {
    if (p.type === 'error') t.fail(String(p.error))
    parts.push(p.type)
  }
  t.equal(await s.text, 'Lima: 20 degrees.')
  const steps = await s.steps
  t.equal(steps[0]!.text, 'Let me see. ')
  t.same(steps[0]!.toolCalls.map((c) => [c.toolName, c.input]), [['get_weather', { city: 'Lima' }]])
  t.ok(parts.includes('tool-call') && parts.includes('tool-result'))
})

t.test('ai: generateObject with a zod schema (json_schema response_format)', async (t) => {
  const h = await setup(t, 'Here you go:\n```json\n{"name": "Paris", "population": 2100000, "tags": ["capital"]}\n```')
  const { object } = await generateObject({
    model: compat(h).chatModel('qwen3-max'),
    schema: z.object({ name: z.string(), population: z.number().int(), tags: z.array(z.string()) }),
    prompt: 'Describe Paris',
    maxRetries: 0,
  })
  t.same(object, { name: 'Paris', population: 2100000, tags: ['capital'] })
  t.match(prompts(h.sim)[0], /# Output format[\s\S]*JSON Schema: \{/)
})

const lc = (h: Harness) => new ChatOpenAI({ model: 'qwen3-max', apiKey: 'x', configuration: { baseURL: `${h.url}/v1` }, maxRetries: 0, timeout: TIMEOUT_MS })

t.test('langchain: bindTools invoke and stream', async (t) => {
  const h = await setup(t, CALL('Bern'), `Ok. ${CALL('Kyiv')}`)
  const withTools = lc(h).bindTools(tools)
  const r = await withTools.invoke('Weather in Bern?')
  t.same(r.tool_calls!.map((c) => [c.name, c.args, c.type]), [['get_weather', { city: 'Bern' }, 'tool_call']])
  t.match(r.tool_calls![0]!.id, /^call_/)
  let acc: Awaited<ReturnType<typeof withTools.invoke>> | undefined
  for await (const chunk of await withTools.stream('Weather in Kyiv?')) acc = acc ? acc.concat(chunk) : chunk
  t.equal(acc!.content, 'Ok. ')
  t.same(acc!.tool_calls!.map((c) => [c.name, c.args]), [['get_weather', { city: 'Kyiv' }]])
})

t.test('langchain: withStructuredOutput', async (t) => {
  const h = await setup(t, '{"name": "Paris", "population": 2100000}', '[TOOL CALL]\n{"name": "city", "arguments": {"name": "Oslo", "population": 700000}}\n[END TOOL CALL]')
  const schema = z.object({ name: z.string(), population: z.number() })
  const viaJson = await lc(h).withStructuredOutput(schema, { name: 'city', method: 'jsonSchema' }).invoke('Describe Paris')
  t.same(viaJson, { name: 'Paris', population: 2100000 })
  const viaTool = await lc(h).withStructuredOutput(schema, { name: 'city', method: 'functionCalling' }).invoke('Describe Oslo')
  t.same(viaTool, { name: 'Oslo', population: 700000 })
  t.match(prompts(h.sim)[1], /You MUST call the tool `city`/, 'functionCalling forces the named tool')
})
