/**
 * The model list over real sockets against the simulator: a models endpoint that hangs must not hold
 * shutdown or a completion; retrieve takes either suffix order; unknown alias targets are logged.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildServer, type GatewayOptions } from '../src/index.js'
import type { Simulator } from '../src/simulator/index.js'
import { harness, postJson, startSim } from './helpers/setup.js'

const MODELS_PATH = '/api/models'

/** Resolves when the simulator has received a request for the model list. */
async function modelsRequested (sim: Simulator): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (sim.log().some((e) => e.path === MODELS_PATH)) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the gateway never asked for the model list')
}

/** A gateway whose first model-list fetch hangs for 30 s (far beyond every budget under test). */
async function slowModels (t: { teardown: (fn: () => unknown) => void }, gateway: GatewayOptions = {}): Promise<{ sim: Simulator; app: FastifyInstance; url: string }> {
  const sim = await startSim(t, { demoAccounts: 1 })
  sim.queue(sim.accounts[0]!.email, { endpoint: 'models', firstByteDelayMs: 30_000 })
  const h = await harness(t, { simulator: sim, gateway })
  await modelsRequested(sim)
  return h
}

t.test('app.close() does not wait for a hanging model-list fetch; the fetch is aborted', async (t) => {
  const { sim, app } = await slowModels(t)
  const start = performance.now()
  await app.close()
  const ms = performance.now() - start
  t.ok(ms < 1000, `closed in ${Math.round(ms)} ms while the upstream list hangs for 30 s`)
  for (let i = 0; i < 100 && !sim.log().find((e) => e.path === MODELS_PATH)!.aborted; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.ok(sim.log().find((e) => e.path === MODELS_PATH)!.aborted, 'the upstream request was cancelled')
  t.equal(app.qwenModels.source, 'builtin')
})

t.test('a completion waits for a hanging list no longer than the budget, then uses the built-in list', async (t) => {
  const { url, app } = await slowModels(t)
  const start = performance.now()
  const res = await postJson(`${url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  const ms = performance.now() - start
  t.equal(res.status, 200)
  t.equal((await res.json() as { model: string }).model, 'qwen3-max')
  t.ok(ms >= 1400 && ms < 3000, `held ${Math.round(ms)} ms with the default 1.5 s budget`)
  t.equal(app.qwenModels.source, 'builtin', 'the list is still being fetched')
  const list = await fetch(`${url}/v1/models`)
  t.equal(list.status, 200, '/v1/models serves the built-in list meanwhile')
})

t.test('a caller whose signal aborts stops waiting at once; the shared fetch carries on', async (t) => {
  const { sim, app } = await slowModels(t)
  const ac = new AbortController()
  const reason = new Error('client gone')
  setTimeout(() => ac.abort(reason), 100)
  const start = performance.now()
  await t.rejects(app.qwenModels.resolve('qwen3-max', { signal: ac.signal }), reason)
  t.ok(performance.now() - start < 1000, 'released well before the budget')
  const entry = sim.log().find((e) => e.path === MODELS_PATH)!
  t.notOk(entry.aborted || entry.finished, 'the model-list request is still running for the cache')
})

t.test('GET /v1/models/:id accepts either suffix order; unknown alias targets are logged once per list', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  const app = await buildServer({
    qwenBaseUrl: sim.url,
    cookies: sim.accounts.map((a) => a.cookie),
    modelsCacheTtlMs: 0,
    modelAliases: { 'gpt-4o': 'qwen3-max', 'gpt-5': 'qwen9-ultra' },
  }, { logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  for (const id of ['qwen3-max-search-thinking', 'qwen3-max-thinking-search']) {
    const res = await fetch(`${url}/v1/models/${id}`)
    t.equal(res.status, 200, id)
    const m = await res.json() as { id: string; root: string; capabilities: { thinking: boolean; search: boolean } }
    t.same([m.id, m.root, m.capabilities.thinking, m.capabilities.search], [id, 'qwen3-max', true, true])
  }
  t.equal((await fetch(`${url}/v1/models/qwq-32b-search-thinking`)).status, 404, 'a variant the model lacks')
  t.equal(app.qwenModels.source, 'upstream')

  const warned = (): Array<Record<string, unknown>> => lines.filter((l) => l.alias !== undefined)
  t.equal(warned().length, 1)
  t.match(warned()[0], { level: 40, alias: 'gpt-5', target: 'qwen9-ultra', msg: /gpt-5.*qwen9-ultra/ })
  await app.qwenModels.refresh(true)
  t.equal(warned().length, 1, 'the same list fetched again is not warned about again')
  const ids = (await (await fetch(`${url}/v1/models`)).json() as { data: Array<{ id: string }> }).data.map((m) => m.id)
  t.ok(ids.includes('gpt-4o'))
  t.notOk(ids.includes('gpt-5'))
})

t.test('a completion whose request budget is shorter than the list wait answers 504 at its budget', async (t) => {
  const { url } = await slowModels(t, { requestTimeoutMs: 300 })
  const start = performance.now()
  const res = await postJson(`${url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  const ms = performance.now() - start
  t.equal(res.status, 504)
  t.equal(((await res.json()) as any).error.code, 'upstream_timeout')
  t.ok(ms < 1200, `answered in ${Math.round(ms)} ms, at the 300 ms budget rather than the 1.5 s list wait`)
})
