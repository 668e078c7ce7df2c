/** The default export is an encapsulated plugin: prefix honoured, no decorator leaks. */
import Fastify from 'fastify'
import t from 'tap'
import qwenGateway, { VERSION } from '../src/index.js'
import { defaultAnswer } from '../src/simulator/index.js'
import { postJson, sseData, startSim } from './helpers/setup.js'
import pkg from '../package.json' with { type: 'json' }

t.test('registers into a host app that has its own config decorator, under a prefix', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const host = Fastify({ logger: false })
  host.decorate('config', { hostSetting: true })
  host.setErrorHandler((err: Error, _req, reply) => reply.code(500).send({ host: 'error handler', message: err.message }))
  host.get('/host-route', async () => ({ host: true }))
  host.get('/host-error', async () => { throw new Error('boom') })
  await host.register(qwenGateway, { prefix: '/qwen', qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie) })
  t.teardown(() => host.close())
  await host.listen({ port: 0, host: '127.0.0.1' })
  const port = (host.server.address() as { port: number }).port
  const base = `http://127.0.0.1:${port}`

  t.equal(host.hasDecorator('qwenConfig'), false, 'no decorator leaks into the host')
  t.equal(host.hasDecorator('qwenPool'), false)
  t.same((host as unknown as { config: unknown }).config, { hostSetting: true })

  const landing = await (await fetch(`${base}/qwen/`)).json() as any
  t.equal(landing.version, VERSION)
  t.ok(landing.endpoints.some((e: any) => e.path === '/qwen/v1/chat/completions'))

  const stream = await postJson(`${base}/qwen/v1/chat/completions`, { model: 'qwen3-max', stream: true, messages: [{ role: 'user', content: 'hi' }] })
  t.equal(stream.status, 200)
  const chunks = sseData(await stream.text()).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d))
  t.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), defaultAnswer('hi'))

  const nonStream = await postJson(`${base}/qwen/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal((await nonStream.json() as any).choices[0].message.content, defaultAnswer('hi'))

  t.equal((await fetch(`${base}/v1/models`)).status, 404, 'nothing is mounted outside the prefix')
  const ours = await postJson(`${base}/qwen/v1/chat/completions`, { model: 'nope', messages: [{ role: 'user', content: 'x' }] })
  t.equal((await ours.json() as any).error.code, 'model_not_found', 'the gateway\'s errors use the OpenAI envelope')
  t.same(await (await fetch(`${base}/host-route`)).json(), { host: true })
  t.same(await (await fetch(`${base}/host-error`)).json(), { host: 'error handler', message: 'boom' }, 'the host keeps its own error handler')
})

t.test('the exported version matches package.json', async (t) => {
  t.equal(VERSION, pkg.version)
})
