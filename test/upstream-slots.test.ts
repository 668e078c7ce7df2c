/** The cap on concurrent upstream requests and its queue budget (UPSTREAM_MAX_CONNECTIONS, UPSTREAM_QUEUE_TIMEOUT_MS). */
import t from 'tap'
import { request } from 'undici'
import { UpstreamError } from '../src/errors.js'
import { UpstreamSlots } from '../src/upstream/slots.js'
import { harness, postJson } from './helpers/setup.js'

async function until (cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return true
}

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })

t.test('slots: granted in order, handed over on release, refused after the queue budget', async (t) => {
  const slots = new UpstreamSlots(2, 50)
  const a = await slots.acquire()
  const b = await slots.acquire()
  t.equal(slots.inUse, 2)
  const order: string[] = []
  const c = slots.acquire().then((r) => { order.push('c'); return r })
  const d = slots.acquire().then((r) => { order.push('d'); return r })
  t.equal(slots.queued, 2)
  a()
  a() // idempotent: frees nothing more
  const rc = await c
  t.same(order, ['c'])
  t.equal(slots.inUse, 2, 'the slot went straight to the waiter')
  const err = await d.catch((e: unknown) => e)
  t.type(err, UpstreamError)
  t.equal((err as UpstreamError).kind, 'overloaded')
  t.equal((err as UpstreamError).statusCode, 503)
  t.equal((err as UpstreamError).code, 'gateway_overloaded')
  t.equal((err as UpstreamError).headers['retry-after'], '1')
  t.equal((err as UpstreamError).retryable, false, 'another identity shares the same cap: no failover')
  t.equal(slots.queued, 0)
  b()
  rc()
  t.equal(slots.inUse, 0)
})

t.test('slots: a waiter whose request is aborted leaves the queue with the abort reason', async (t) => {
  const slots = new UpstreamSlots(1, 10_000)
  const held = await slots.acquire()
  const ac = new AbortController()
  const waiting = slots.acquire(ac.signal)
  t.equal(slots.queued, 1)
  ac.abort(new Error('client left'))
  await t.rejects(waiting, /client left/)
  t.equal(slots.queued, 0)
  await t.rejects(slots.acquire(ac.signal), /client left/, 'an aborted signal never queues')
  held()
  t.equal(slots.inUse, 0)
})

t.test('gateway: with every upstream connection busy, a request gets 503 gateway_overloaded; the slot comes back after the stream', async (t) => {
  // Chat deletion off: its background DELETEs would take the one slot this test counts.
  const h = await harness(t, { sim: { demoAccounts: 1, frameChars: 4 }, gateway: { upstreamMaxConnections: 1, upstreamQueueTimeoutMs: 100, chatDeletion: 'off' } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { frameDelayMs: 60, answer: 'holding the only connection for a while' })
  const first = await request(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })) })
  t.equal(first.statusCode, 200)
  t.equal(h.app.qwenUpstream.slots?.inUse, 1)
  const during = postJson(`${h.url}/v1/chat/completions`, body())
  t.ok(await until(() => h.app.qwenUpstream.slots!.queued === 1), 'the second request waits for the slot')
  const text = await h.app.qwenMetrics.registry.metrics()
  t.match(text, /^qwen_upstream_requests_in_flight 1$/m)
  t.match(text, /^qwen_upstream_requests_queued 1$/m)
  const second = await during
  t.equal(second.status, 503)
  t.equal(second.headers.get('retry-after'), '1')
  const j = await second.json() as { error: { code: string; type: string } }
  t.equal(j.error.code, 'gateway_overloaded')
  t.equal(j.error.type, 'server_error')
  t.match(await first.body.text(), /\[DONE\]/)
  // Every call (chat creation, completion) gave its slot back.
  for (let i = 0; i < 50 && h.app.qwenUpstream.slots!.inUse > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(h.app.qwenUpstream.slots?.inUse, 0)
  const third = await postJson(`${h.url}/v1/chat/completions`, body())
  t.equal(third.status, 200)
  await third.arrayBuffer()
  t.equal(h.app.qwenUpstream.slots?.inUse, 0, 'a non-stream answer gives its slot back too')
  t.equal(h.app.qwenUpstream.slots?.max, 1)
})
