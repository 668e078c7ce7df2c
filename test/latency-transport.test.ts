/**
 * Latency work that is not ready chats: one keep-alive upstream connection serves many requests;
 * SSE goes out unbuffered (`X-Accel-Buffering: no`, never compressed, Nagle off) and its first
 * content chunk reaches the client long before the upstream finishes.
 */
import { request as httpRequest } from 'node:http'
import type { Socket } from 'node:net'
import t from 'tap'
import { harness, postJson, sseData } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hello' }], ...extra })

t.test('upstream keep-alive: many requests, few connections', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { conversationMode: 'fold', chatDeletion: 'off' } })
  // Warm: the token, the model list.
  await (await postJson(`${h.url}/v1/chat/completions`, body())).text()
  const before = h.sim.connections()
  for (let i = 0; i < 20; i++) {
    const res = await postJson(`${h.url}/v1/chat/completions`, body({ stream: i % 2 === 0 }))
    t.equal(res.status, 200)
    await res.text()
  }
  const used = h.sim.connections() - before
  t.ok(used <= 2, `20 requests (40 upstream calls) over ${used} new connection(s)`)
  t.ok(h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').length >= 21)
  // Concurrency opens more connections (at most one per upstream call in flight), and they are reused:
  // three bursts of 5 requests (30 upstream calls) without reuse would need 30.
  const c0 = h.sim.connections()
  for (let burst = 0; burst < 3; burst++) {
    await Promise.all(Array.from({ length: 5 }, async () => (await postJson(`${h.url}/v1/chat/completions`, body())).text()))
  }
  const opened = h.sim.connections() - c0
  t.ok(opened <= 10, `3 bursts of 5 concurrent requests opened ${opened} connection(s)`)
})

t.test('SSE: no buffering header, no compression, Nagle off, first chunk early', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1, latency: { firstFrameDelayMs: 50, frameDelayMs: 40, jitterPct: 0 } }, gateway: { conversationMode: 'fold' } })
  t.equal((h.app.server as unknown as { noDelay?: boolean }).noDelay, true, 'the server disables Nagle on every connection')
  const sockets: Socket[] = []
  h.app.server.on('connection', (s: Socket) => { sockets.push(s) })
  const url = new URL(`${h.url}/v1/chat/completions`)
  const payload = JSON.stringify(body({ stream: true, messages: [{ role: 'user', content: 'Tell me a long story about latency please' }] }))
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, deflate, br' } }, resolve)
    req.on('error', reject)
    req.end(payload)
  })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-accel-buffering'], 'no')
  t.match(String(res.headers['cache-control']), /no-cache/)
  t.equal(res.headers['content-encoding'], undefined, 'never compressed')
  const sock = sockets[0]!
  const noDelay = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'kSetNoDelay')
  if (noDelay) t.equal((sock as unknown as Record<symbol, unknown>)[noDelay], true, 'the client socket has Nagle off')
  const t0 = performance.now()
  let firstContentAt: number | undefined
  let text = ''
  for await (const chunk of res) {
    text += String(chunk)
    if (firstContentAt === undefined && text.includes('"content"')) firstContentAt = performance.now() - t0
  }
  const total = performance.now() - t0
  const frames = sseData(text)
  t.equal(frames.at(-1), '[DONE]')
  t.ok(frames.length > 5, 'streamed in many chunks')
  t.ok(firstContentAt !== undefined && firstContentAt < total - 80, `first content after ${firstContentAt?.toFixed(0)} ms, end after ${total.toFixed(0)} ms`)
})
