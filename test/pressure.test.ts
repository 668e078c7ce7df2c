/** Load shedding (MAX_HEAP_USED_BYTES and friends): 503 server_overloaded in the envelope; probes still answer; off by default. */
import t from 'tap'
import { harness, postJson } from './helpers/setup.js'

const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }

t.test('over a threshold: 503 server_overloaded with retry-after; /health and /ready still answer; nothing upstream', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { maxHeapUsedBytes: 1 } })
  // The first sample comes within a second.
  let res: Response | undefined
  for (let i = 0; i < 40; i++) {
    res = await postJson(`${h.url}/v1/chat/completions`, body)
    if (res.status === 503) break
    await res.arrayBuffer()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(res!.status, 503)
  t.equal(res!.headers.get('retry-after'), '5')
  t.same(await res!.json(), { error: { message: 'The gateway is overloaded (heap above MAX_HEAP_USED_BYTES); retry shortly', type: 'server_error', param: null, code: 'server_overloaded' } })
  h.sim.clearLog()
  t.equal((await postJson(`${h.url}/v1/chat/completions`, body)).status, 503)
  t.equal(h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').length, 0, 'nothing reached the upstream')
  t.equal((await fetch(`${h.url}/health`)).status, 200)
  t.equal((await fetch(`${h.url}/ready`)).status, 200)
})

t.test('off by default: no under-pressure decorators, requests served', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  t.notOk('isUnderPressure' in h.app, 'not registered when no threshold is set')
  t.equal((await postJson(`${h.url}/v1/chat/completions`, body)).status, 200)
})
