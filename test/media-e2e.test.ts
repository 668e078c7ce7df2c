/**
 * Media input end to end: gateway + simulator over real sockets, the production path (upload plugin
 * included). An image in a chat request reaches the upstream as a `files[]` object of the serving
 * account and the answer works; the vision fallback; a URL image from an allowed local server.
 */
import t from 'tap'
import type { Simulator } from '../src/simulator/index.js'
import { JPEG, PDF, PNG, dataUrl } from './helpers/media-fixtures.js'
import { startMediaServer } from './helpers/media-server.js'
import { harness, postJson, sseData } from './helpers/setup.js'

const img = (url: string) => ({ type: 'image_url', image_url: { url } })
const ask = (model: string, ...parts: unknown[]) => ({ model, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, ...parts] }] })

interface LoggedCompletion { body: { model: string; messages: Array<{ content: string; files: Array<{ type: string; url?: string; name?: string }> }> } }
const completions = (sim: Simulator) => sim.log().filter((e) => e.path === '/api/v2/chat/completions' && e.status === 200) as unknown as LoggedCompletion[]
const puts = (sim: Simulator) => sim.log().filter((e) => e.method === 'PUT' && e.status === 200)

interface Completion { model: string; choices: Array<{ message: { content: string } }> }

t.test('an inline image reaches the upstream as a file of the serving account; stream and not', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const url = `${h.url}/v1/chat/completions`
  const res = await postJson(url, ask('qwen3-max', img(dataUrl('image/png', PNG))))
  t.equal(res.status, 200)
  const j = await res.json() as Completion
  t.equal(j.model, 'qwen3-max')
  t.match(j.choices[0]!.message.content, /^I see 1 attached file\(s\) \(image\)/)
  const sent = completions(h.sim)[0]!.body.messages[0]!
  t.equal(sent.files.length, 1)
  t.equal(sent.files[0]!.type, 'image')
  t.equal(sent.content, 'What is in this picture?\n[image]', 'the text parts stay in the prompt, the image leaves its marker')
  t.equal(puts(h.sim).length, 1, 'uploaded once')

  const stream = await postJson(url, { ...ask('qwen3-max', img(dataUrl('image/jpeg', JPEG))), stream: true })
  t.equal(stream.status, 200)
  const text = sseData(await stream.text()).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as { choices: Array<{ delta: { content?: string } }> })
    .map((c) => c.choices[0]?.delta.content ?? '').join('')
  t.match(text, /^I see 1 attached file\(s\) \(image\)/)
  t.equal(completions(h.sim)[1]!.body.messages[0]!.files[0]!.type, 'image')
})

t.test('history: earlier images are attached too, in order; a document goes along', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const res = await postJson(`${h.url}/v1/chat/completions`, {
    model: 'qwen3-max',
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'First picture' }, img(dataUrl('image/png', PNG))] },
      { role: 'assistant', content: 'A dot.' },
      { role: 'user', content: [{ type: 'text', text: 'And this one, with the notes?' }, img(dataUrl('image/jpeg', JPEG)), { type: 'file', file: { file_data: dataUrl('application/pdf', PDF), filename: 'notes.pdf' } }] },
    ],
  })
  t.equal(res.status, 200)
  t.match((await res.json() as Completion).choices[0]!.message.content, /^I see 3 attached file\(s\)/)
  const sent = completions(h.sim)[0]!.body.messages[0]!
  t.same(sent.files.map((f) => f.type), ['image', 'image', 'file'])
  t.match(sent.content, /\[User\]\nFirst picture\n\[image\][\s\S]*\[User\]\nAnd this one, with the notes\?\n\[image\]\n\[file notes\.pdf\]/)
})

t.test('vision fallback: a model without vision is served by VISION_FALLBACK_MODEL, the response names the requested one', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  await h.app.qwenModels.refresh(true)
  const url = `${h.url}/v1/chat/completions`
  for (const stream of [false, true]) {
    const res = await postJson(url, { ...ask('qwq-32b', img(dataUrl('image/png', PNG))), stream })
    t.equal(res.status, 200, `stream ${stream}`)
    const body = await res.text()
    const model = stream ? (JSON.parse(sseData(body)[0]!) as { model: string }).model : (JSON.parse(body) as Completion).model
    t.equal(model, 'qwq-32b', 'the requested model is echoed')
  }
  t.same(completions(h.sim).map((c) => c.body.model), ['qwen3-vl-plus', 'qwen3-vl-plus'], 'the upstream served the fallback')
  const text = await postJson(url, ask('qwq-32b'))
  t.equal(text.status, 200)
  t.equal(completions(h.sim)[2]!.body.model, 'qwq-32b', 'no image: no fallback')
  const doc = await postJson(url, ask('qwq-32b', { type: 'file', file: { file_data: dataUrl('application/pdf', PDF), filename: 'a.pdf' } }))
  t.equal(doc.status, 200)
  t.equal(completions(h.sim)[3]!.body.model, 'qwq-32b', 'a document needs no vision')
})

t.test('a URL image from a local server allowed by MEDIA_FETCH_ALLOW', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { mediaFetchAllow: '127.0.0.1' } })
  const res = await postJson(`${h.url}/v1/chat/completions`, ask('qwen3-max', img(`${srv.url}/redirect/2`)))
  t.equal(res.status, 200)
  t.match((await res.json() as Completion).choices[0]!.message.content, /^I see 1 attached file\(s\) \(image\)/)
  t.same(srv.hits, ['/redirect/2', '/redirect/1', '/file/png'], 'fetched by the gateway, through the redirects')
  const file = completions(h.sim)[0]!.body.messages[0]!.files[0]!
  t.equal(file.type, 'image')
  t.notMatch(JSON.stringify(file), new RegExp(`127\\.0\\.0\\.1:${srv.port}`), 'the client URL is not forwarded to the upstream')
})
