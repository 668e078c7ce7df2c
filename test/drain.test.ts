/** Graceful drain on close (issue: operations): requests in progress finish, new ones get 503, probes still answer. */
import t from 'tap'
import { request } from 'undici'
import { harness, postJson, sseData } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a stream in progress finishes during the drain; new requests get 503, /health still answers', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, frameChars: 4 }, gateway: { shutdownGraceMs: 10_000 } })
  const answer = 'a slow answer that takes a while to stream'
  h.sim.queue(h.sim.accounts[0]!.email, { frameDelayMs: 40, answer })
  const res = await request(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })) })
  t.equal(res.statusCode, 200)
  const text = res.body.text()
  await sleep(60)
  const started = Date.now()
  const closing = h.app.close()
  await sleep(20)
  t.equal(h.app.qwenLifecycle.draining, true)

  const refused = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '1')
  t.same(await refused.json(), { error: { message: 'The gateway is shutting down; retry the request', type: 'server_error', param: null, code: 'server_shutting_down' } })
  const health = await fetch(`${h.url}/health`)
  t.equal(health.status, 200, 'liveness keeps answering while draining')
  await health.arrayBuffer()
  const ready = await fetch(`${h.url}/ready`)
  t.equal(ready.status, 503, 'readiness says no while draining, so the load balancer moves on')
  t.same(await ready.json(), { status: 'not_ready', mode: 'server', reason: 'the gateway is shutting down', store: 'memory' })

  const data = sseData(await text)
  await closing
  t.equal(data.at(-1), '[DONE]')
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as any)
  t.notOk(chunks.some((c) => c.error), 'no error frame: the stream was allowed to finish')
  t.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), answer)
  t.equal(chunks.at(-1).choices[0].finish_reason, 'stop')
  const took = Date.now() - started
  t.ok(took < 3000, `close returned once the stream was done, not at the end of the grace (${took} ms)`)
})

t.test('a non-stream request in progress gets its answer during the drain', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, frameChars: 4 }, gateway: { shutdownGraceMs: 10_000 } })
  h.sim.queue(h.sim.accounts[0]!.email, { frameDelayMs: 30, answer: 'finished in the drain' })
  const pending = postJson(`${h.url}/v1/chat/completions`, body())
  await sleep(60)
  const closing = h.app.close()
  const res = await pending
  t.equal(res.status, 200)
  t.equal(((await res.json()) as any).choices[0].message.content, 'finished in the drain')
  await closing
})

t.test('with no request in progress, close does not wait for the grace', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { shutdownGraceMs: 60_000 } })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  await res.arrayBuffer()
  const started = Date.now()
  await h.app.close()
  t.ok(Date.now() - started < 3000)
})

t.test('shutdownGraceMs 0 aborts at once', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { shutdownGraceMs: 0 } })
  h.sim.queue(h.sim.accounts[0]!.email, { hang: true })
  const res = await request(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })) })
  const text = res.body.text()
  await sleep(50)
  await h.app.close()
  t.match(await text, /"code":"server_shutting_down"/)
})
