/** The TTFT bench's clients (`bench/ttft-clients.ts`) against a real simulator: what a round measures and that every answer is read to its end. */
import t from 'tap'
import { Agent } from 'undici'
import { epochMs, runRound, upstreamHeaders } from '../bench/ttft-clients.js'
import { startSimulator } from '../src/simulator/index.js'

t.test('a floor round: one sample per request, at the first content; the answers are read to their end', async (t) => {
  const sim = await startSimulator({ demoAccounts: 1, now: epochMs, latency: { profile: 'realistic', chatNewDelayMs: 0, firstFrameDelayMs: 60, frameDelayMs: 5, jitterPct: 0 } })
  const agent = new Agent({ connections: 8 })
  t.teardown(async () => {
    await agent.close()
    await sim.close()
  })
  const auth = await fetch(`${sim.url}/api/v1/auths/`, { headers: { cookie: sim.accounts[0]!.cookie } })
  const token = ((await auth.json()) as { token: string }).token
  const chats: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${sim.url}/api/v2/chats/new`, {
      method: 'POST', headers: upstreamHeaders(token, `new-${i}`),
      body: JSON.stringify({ title: 'New Chat', models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() }),
    })
    chats.push(((await res.json()) as { data: { id: string } }).data.id)
  }
  const before = epochMs()
  const items = [...chats.map((chatId, i) => ({ id: `r-${i}`, token, chatId })), { id: 'bad', token: 'not-a-token', chatId: chats[0]! }]
  const got = await runRound(agent, { op: 'floor', url: sim.url, model: 'qwen3-max', items })
  t.same(got.map((g) => g.id), ['r-0', 'r-1', 'r-2', 'bad'])
  for (const g of got.slice(0, 3)) {
    t.ok(g.ms! >= 60 && g.ms! < 2000, `${g.id}: after the first frame delay (${g.ms} ms)`)
    t.ok(g.sentAt >= before && g.sentAt <= before + 1000, 'sent at once')
    const entry = sim.log().find((e) => e.headers['x-request-id'] === g.id && e.path === '/api/v2/chat/completions')!
    t.ok(entry.time >= g.sentAt && entry.time <= g.sentAt + g.ms!, 'the simulator got it between the send and the first content')
    t.equal(entry.finished, true, 'the answer was read to its end')
    t.equal(entry.aborted, false)
  }
  t.match(got[3]!.error, /status|content/, 'a failed request is an error, not a sample')
  t.equal(got[3]!.ms, undefined)
})

t.test('a gateway round against something that is no gateway: every request is an error', async (t) => {
  const sim = await startSimulator({ demoAccounts: 1 })
  const agent = new Agent()
  t.teardown(async () => {
    await agent.close()
    await sim.close()
  })
  const got = await runRound(agent, { op: 'gateway', url: sim.url, model: 'qwen3-max', items: [{ id: 'g-0', prompt: 'hi' }] })
  t.equal(got.length, 1)
  t.match(got[0]!.error, /gateway status \d+/)
})

t.test('a stream without content, or one that breaks before it, is an error; one that breaks after it is a sample', async (t) => {
  const { createServer } = await import('node:http')
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n')
    if (req.headers['x-request-id'] === 'mid') res.write('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n')
    if (req.headers['x-request-id'] === 'empty') res.end('data: [DONE]\n\n')
    else setTimeout(() => res.destroy(), 20)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const agent = new Agent()
  t.teardown(async () => {
    await agent.close()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  const got = await runRound(agent, { op: 'gateway', url: `http://127.0.0.1:${port}`, model: 'm', items: [{ id: 'empty', prompt: 'x' }, { id: 'broken', prompt: 'x' }, { id: 'mid', prompt: 'x' }] })
  t.match(got[0]!.error, /ended without content/)
  t.ok(got[1]!.error, 'broken: an error')
  t.equal(got[1]!.ms, undefined)
  t.type(got[2]!.ms, 'number', 'broken after its first content: still a sample (the rest is not timed)')
})
