/** Images on /v1/messages and /v1/responses: uploaded and attached like on the chat route, with the vision fallback. */
import t from 'tap'
import { PNG, dataUrl } from './helpers/media-fixtures.js'
import { harness, postJson } from './helpers/setup.js'

const ANTHROPIC = { 'anthropic-version': '2023-06-01' }
const b64 = dataUrl('image/png', PNG).split(',')[1]!
const anthropicImage = (model: string) => ({ model, max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64 } }] }] })

function sentTurns (log: Array<{ path: string; body: unknown }>): Array<{ model: string; content: string; files: Array<{ type: string; file_type: string }> }> {
  return log.filter((e) => e.path === '/api/v2/chat/completions').map((e) => {
    const b = e.body as { model: string; messages: Array<{ content: string; files: Array<{ type: string; file_type: string }> }> }
    return { model: b.model, content: b.messages[0]!.content, files: b.messages[0]!.files }
  })
}

t.test('an Anthropic image block reaches the upstream as an uploaded file', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const res = await postJson(`${h.url}/v1/messages`, anthropicImage('qwen3-max'), ANTHROPIC)
  t.equal(res.status, 200)
  t.match(((await res.json()) as any).content[0].text, /^I see 1 attached file\(s\) \(image\)/)
  const [turn] = sentTurns(h.sim.log() as any)
  t.match(turn!.files, [{ type: 'image', file_type: 'image/png' }])
})

t.test('a Responses input_image reaches the upstream as an uploaded file', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const res = await postJson(`${h.url}/v1/responses`, { model: 'qwen3-max', input: [{ role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: dataUrl('image/png', PNG) }] }] })
  t.equal(res.status, 200)
  const [turn] = sentTurns(h.sim.log() as any)
  t.equal(turn!.files.length, 1)
  t.equal(turn!.files[0]!.file_type, 'image/png')
})

t.test('a model without vision falls back on the faces too, and the requested name is echoed', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const res = await postJson(`${h.url}/v1/messages`, anthropicImage('qwen3-coder-plus'), ANTHROPIC)
  t.equal(res.status, 200)
  t.equal(((await res.json()) as any).model, 'qwen3-coder-plus')
  t.same(sentTurns(h.sim.log() as any).map((x) => x.model), ['qwen3-vl-plus'])
})

t.test('a refused image on a face: 400 in that face\'s envelope, nothing upstream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const bad = { ...anthropicImage('qwen3-max'), messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: Buffer.from('not a png at all').toString('base64') } }] }] }
  const res = await postJson(`${h.url}/v1/messages`, bad, ANTHROPIC)
  t.equal(res.status, 400)
  const j = await res.json() as any
  t.equal(j.type, 'error')
  t.equal(j.error.type, 'invalid_request_error')
  t.equal(sentTurns(h.sim.log() as any).length, 0)
})
