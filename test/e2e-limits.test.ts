/** Caps the gateway imposes on what it buffers from the upstream: 502 before commit, an error frame after. */
import t from 'tap'
import type { Simulator } from '../src/simulator/index.js'
import { harness, postJson, sseData, startSim } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const LIMIT = 16 * 1024

/** Whether the simulator saw its (only) completion request closed by the client, within a second. */
async function upstreamClosed (sim: Simulator): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (sim.log().find((e) => e.path === '/api/v2/chat/completions')?.aborted) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}

t.test('endless short data lines with no blank line: 502 upstream_response_too_large before commit', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const email = sim.accounts[0]!.email
  for (const stream of [false, true]) {
    const h = await harness(t, { simulator: sim, gateway: { maxBufferBytes: LIMIT } })
    sim.clearLog()
    // Only response.created, then the flood: nothing has reached the client yet.
    sim.queue(email, { floodAfterFrames: 1 })
    const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream }))
    t.equal(res.status, 502, `stream ${stream}: status`)
    const j = await res.json() as { error: { code: string; message: string } }
    t.equal(j.error.code, 'upstream_response_too_large')
    t.match(j.error.message, `SSE event exceeded ${LIMIT} bytes`)
    const upstream = sim.log().filter((e) => e.path === '/api/v2/chat/completions')
    t.equal(upstream.length, 1, 'a cap is not retried')
    t.equal(await upstreamClosed(sim), true, 'the gateway stopped reading and closed the upstream connection')
    await h.app.close()
  }
})

t.test('the same flood after the commit point: an error frame, then [DONE]', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { maxBufferBytes: LIMIT } })
  // response.created and two answer frames, then the flood.
  h.sim.queue(h.sim.accounts[0]!.email, { floodAfterFrames: 3 })
  const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
  t.equal(res.status, 200)
  const data = sseData(await res.text())
  t.equal(data.at(-1), '[DONE]')
  const error = JSON.parse(data.at(-2)!) as { error: { code: string; type: string } }
  t.equal(error.error.code, 'upstream_response_too_large')
  t.equal(error.error.type, 'server_error')
  const content = data.slice(0, -2).map((d) => (JSON.parse(d) as any).choices[0].delta.content ?? '').join('')
  t.ok(content.length > 0, 'the answer frames before the flood reached the client')
  t.equal(await upstreamClosed(h.sim), true, 'upstream connection closed')
})

t.test('a JSON body over the cap is a limit too', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { maxBufferBytes: LIMIT } })
  h.sim.queue(h.sim.accounts[0]!.email, { endpoint: 'chats_new', fail: { status: 200, body: JSON.stringify({ success: true, data: { id: 'x', pad: 'y'.repeat(LIMIT) } }) } })
  const res = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(res.status, 502)
  const j = await res.json() as { error: { code: string; message: string } }
  t.equal(j.error.code, 'upstream_response_too_large')
  t.match(j.error.message, `exceeded ${LIMIT} bytes`)
})

t.test('RATE_LIMIT_ON_STORE_ERROR does not apply without a shared store: the memory store counts (deny never refuses)', async (t) => {
  for (const rateLimitOnStoreError of ['deny', 'allow'] as const) {
    const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { keyLimits: { anonymous: { rpm: 1 } }, rateLimitOnStoreError } })
    const first = await postJson(`${h.url}/v1/chat/completions`, body())
    const second = await postJson(`${h.url}/v1/chat/completions`, body())
    t.same([first.status, second.status], [200, 429], rateLimitOnStoreError)
    t.equal((await second.json() as { error: { code: string } }).error.code, 'rate_limit_exceeded')
    await h.app.close()
  }
})
