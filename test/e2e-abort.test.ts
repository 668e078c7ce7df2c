/** Cancellation, keep-alive and shutdown over real sockets (CONTRACT S10, DECISIONS "Streaming commit point"). */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { connect } from 'node:net'
import { request } from 'undici'
import { harness, postJson } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })

async function waitFor (check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (check()) return true
    await sleep(20)
  }
  return check()
}

t.test('S10: a client that leaves mid-stream aborts the upstream request within a second', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { frameDelayMs: 100 })
  const ac = new AbortController()
  const res = await request(`${h.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })), signal: ac.signal,
  })
  t.equal(res.statusCode, 200)
  for await (const chunk of res.body) {
    if (String(chunk).includes('"role":"assistant"')) break
  }
  const leftAt = Date.now()
  ac.abort()
  const upstream = () => h.sim.log().find((e) => e.path === '/api/v2/chat/completions')
  t.ok(await waitFor(() => upstream()?.aborted === true, 1000), 'the simulator saw the gateway close the upstream request')
  t.ok(Date.now() - leftAt < 1000)
  t.notOk(upstream()!.finished)
})

t.test('a client that leaves before the first upstream byte aborts the upstream request too', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  h.sim.queue(h.sim.accounts[0]!.email, { firstByteDelayMs: 3000 })
  const ac = new AbortController()
  const pending = request(`${h.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body()), signal: ac.signal,
  }).catch((err: Error) => err)
  const upstream = () => h.sim.log().find((e) => e.path === '/api/v2/chat/completions')
  t.ok(await waitFor(() => upstream() !== undefined, 2000), 'the completion reached the upstream')
  ac.abort()
  t.type(await pending, Error)
  t.ok(await waitFor(() => upstream()?.aborted === true, 1000), 'aborted upstream within a second')
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 200, 'the gateway and the account keep working')
})

t.test('keep-alive comments flow while the upstream is silent after commit', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { keepAliveIntervalMs: 100 } })
  h.sim.queue(h.sim.accounts[0]!.email, { frameDelayMs: 120, answer: 'slow answer' })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  const text = await res.text()
  t.match(text, /^: keep-alive$/m)
  t.ok(text.endsWith('data: [DONE]\n\n'))
})

t.test('closing the app ends live streams that outlast the drain grace', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { shutdownGraceMs: 200 } })
  h.sim.queue(h.sim.accounts[0]!.email, { hang: true })
  const res = await request(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })) })
  t.equal(res.statusCode, 200)
  const text = res.body.text()
  await sleep(100)
  const started = Date.now()
  await h.app.close()
  const took = Date.now() - started
  t.ok(took >= 190, `the stream had the grace period to finish (${took} ms)`)
  t.ok(took < 3000, `close did not wait for the stream beyond the grace (${took} ms)`)
  const out = await text
  t.match(out, /"code":"server_shutting_down"/)
  t.ok(out.endsWith('data: [DONE]\n\n'))
})

t.test('a client that stops reading is cut off at the request budget and frees its identity', async (t) => {
  // The budget leaves room for a loaded machine to get the stream going before it runs out.
  const h = await harness(t, { sim: { demoAccounts: 1, frameChars: 65536 }, gateway: { requestTimeoutMs: 4000 } })
  h.sim.queue(h.sim.accounts[0]!.email, { answer: 'x'.repeat(8_000_000) })
  const port = new URL(h.url).port
  const socket = connect(Number(port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  const payload = JSON.stringify(body({ stream: true }))
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`)
  await new Promise<void>((resolve) => socket.once('data', () => resolve()))
  socket.pause() // never read again
  const identity = h.app.qwenPool.identities[0]!
  t.ok(await waitFor(() => h.app.qwenPool.inFlightOf(identity) === 1, 3500), 'the stream holds the identity while it runs')
  t.ok(await waitFor(() => h.app.qwenPool.inFlightOf(identity) === 0, 8000), 'released once the request budget ran out')
  const started = Date.now()
  await h.app.close()
  t.ok(Date.now() - started < 2500, 'closing does not wait for the stalled client')
})
