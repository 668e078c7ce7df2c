/**
 * Responses API tools over real sockets: a function call comes back as a `function_call` item, a
 * call of a free-form tool (Codex's `apply_patch`) as a `custom_tool_call` with the raw input, in the
 * JSON body and in the stream; the Codex request body with its tools posted as-is. (The `openai`
 * SDK's `responses.stream` with a function tool is in `test/conformance/responses-sdk.test.ts`.)
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'

const SHELL = { type: 'function', name: 'shell', description: 'Run a command', parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } }, required: ['command'] } }
const PATCH = { type: 'custom', name: 'apply_patch', description: 'Edit files with a patch' }
const PATCH_TEXT = '*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch\n'
const callText = (name: string, args: unknown) => `[TOOL CALL]\n${JSON.stringify({ name, arguments: args })}\n[END TOOL CALL]`

interface Ev { event: string; data: Record<string, any> }
function events (raw: string): Ev[] {
  return raw.split('\n\n').filter((b) => b && !b.startsWith(':')).map((b) => { const [e, d] = b.split('\n'); return { event: e!.slice(7), data: JSON.parse(d!.slice(6)) } })
}

t.test('function and custom tool calls in the JSON body', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: `${callText('shell', { command: ['ls'] })}\n${callText('apply_patch', { input: PATCH_TEXT })}` })
  const r = await (await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', input: 'List and patch', tools: [SHELL, PATCH] })).json() as Record<string, any>
  t.equal(r.status, 'completed')
  const calls = r.output.filter((o: any) => o.type !== 'message')
  t.match(calls[0], { type: 'function_call', call_id: /^call_/, name: 'shell', arguments: '{"command":["ls"]}', status: 'completed' })
  t.match(calls[1], { type: 'custom_tool_call', call_id: /^call_/, name: 'apply_patch', input: PATCH_TEXT, status: 'completed' })
})

t.test('stream: function_call_arguments and custom_tool_call_input events', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: callText('apply_patch', { input: PATCH_TEXT }) })
  const evs = events(await (await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', input: 'Patch', tools: [SHELL, PATCH], stream: true })).text())
  const input = evs.filter((e) => e.event === 'response.custom_tool_call_input.delta').map((e) => e.data.delta).join('')
  t.equal(input, PATCH_TEXT)
  t.equal(evs.find((e) => e.event === 'response.custom_tool_call_input.done')!.data.input, PATCH_TEXT)
  const done = evs[evs.length - 1]!
  t.equal(done.event, 'response.completed')
  t.match(done.data.response.output[done.data.response.output.length - 1], { type: 'custom_tool_call', input: PATCH_TEXT })
})

t.test('the Codex request body with its tools, posted as-is', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const codex = JSON.parse(readFileSync(new URL('./fixtures/codex-responses-request.json', import.meta.url), 'utf8'))
  h.sim.queue(h.sim.accounts[0]!.email, { answer: callText('shell', { command: ['bash', '-lc', 'ls src'] }) })
  const res = await postJson(`${h.url}/v1/responses`, codex)
  t.equal(res.status, 200)
  const evs = events(await res.text())
  const done = evs[evs.length - 1]!
  t.equal(done.event, 'response.completed')
  t.match(done.data.response.output.find((o: any) => o.type === 'function_call'), { name: 'shell', arguments: '{"command":["bash","-lc","ls src"]}' })
  const prompt = (h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as any).messages[0].content as string
  t.match(prompt, /apply_patch/)
  t.notMatch(prompt, /search_docs/, 'namespace tools are left out')
})
