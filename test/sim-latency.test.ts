/** Simulator latency profiles (`SIM_PROFILE`): the delays are honoured, and their timers end with the client or the simulator. */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Agent, request } from 'undici'
import { latencyFromEnv, REALISTIC, simLatency, startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator/index.js'

const dispatcher = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 })
t.teardown(() => dispatcher.close())

async function sim (tt: { teardown (fn: () => unknown): void }, opts: SimulatorOptions): Promise<Simulator> {
  const s = await startSimulator(opts)
  tt.teardown(() => s.close())
  return s
}

const headers = (token: string): Record<string, string> => ({
  source: 'web', version: '0.2.81', 'x-request-id': randomUUID(), authorization: `Bearer ${token}`, 'content-type': 'application/json',
})

async function token (s: Simulator): Promise<string> {
  const r = await request(`${s.url}/api/v1/auths/`, { headers: { cookie: s.accounts[0]!.cookie }, dispatcher })
  return ((await r.body.json()) as { token: string }).token
}

async function newChat (s: Simulator, tok: string, signal?: AbortSignal): Promise<string> {
  const r = await request(`${s.url}/api/v2/chats/new`, {
    method: 'POST', headers: headers(tok), dispatcher, signal,
    body: JSON.stringify({ title: 'New Chat', models: ['qwen3-max'], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() }),
  })
  return ((await r.body.json()) as { data: { id: string } }).data.id
}

function completion (s: Simulator, tok: string, chatId: string, signal?: AbortSignal) {
  return request(`${s.url}/api/v2/chat/completions?chat_id=${chatId}`, {
    method: 'POST', headers: headers(tok), dispatcher, signal,
    body: JSON.stringify({
      stream: true, version: '2.1', incremental_output: true, chat_id: chatId, chat_mode: 'normal', model: 'qwen3-max', parent_id: null,
      messages: [{ role: 'user', content: 'Hello there', user_action: 'chat', files: [], models: ['qwen3-max'], chat_type: 't2t', feature_config: { thinking_enabled: false, output_schema: 'phase' }, extra: {} }],
      timestamp: Math.floor(Date.now() / 1000),
    }),
  })
}

const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
/** Whether the count of timers gets back to `n` within a second (client-side keep-alive timers are short). */
async function settlesTo (n: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (timeouts() <= n) return true
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setTimeout(r, 20))
  }
  return timeouts() <= n
}

t.test('profiles and their knobs', async (t) => {
  const instant = simLatency()
  t.same([instant.chatNew(), instant.firstFrame(), instant.frame(), instant.paced], [0, 0, 0, false])
  t.equal(instant.config.profile, 'instant')
  const realistic = simLatency({ profile: 'realistic' }, () => 0.5)
  t.same([realistic.chatNew(), realistic.firstFrame(), realistic.frame(), realistic.paced], [150, 300, 20, true])
  t.same(realistic.config, { profile: 'realistic', ...REALISTIC })
  // Jitter: ±jitterPct percent, uniform.
  t.equal(simLatency({ profile: 'realistic' }, () => 0).firstFrame(), 270)
  t.equal(simLatency({ profile: 'realistic' }, () => 1).firstFrame(), 330)
  t.equal(simLatency({ profile: 'realistic', firstFrameDelayMs: 50, jitterPct: 0 }, () => 1).firstFrame(), 50)
  t.equal(simLatency({ frameDelayMs: 5 }).paced, true)
  t.throws(() => simLatency({ chatNewDelayMs: -1 }), /chatNewDelayMs/)

  t.same(latencyFromEnv({}), {})
  t.same(latencyFromEnv({ SIM_PROFILE: 'realistic', SIM_CHAT_NEW_DELAY_MS: '10', SIM_FIRST_FRAME_DELAY_MS: '20', SIM_FRAME_DELAY_MS: '3', SIM_JITTER_PCT: '0', SIM_OTHER: 'x' }),
    { profile: 'realistic', chatNewDelayMs: 10, firstFrameDelayMs: 20, frameDelayMs: 3, jitterPct: 0 })
  t.same(latencyFromEnv({ SIM_PROFILE: '', SIM_FRAME_DELAY_MS: '' }), {})
  t.throws(() => latencyFromEnv({ SIM_PROFILE: 'slow' }), /SIM_PROFILE/)
  t.throws(() => latencyFromEnv({ SIM_FRAME_DELAY_MS: 'abc' }), /SIM_FRAME_DELAY_MS/)
  t.throws(() => latencyFromEnv({ SIM_CHAT_NEW_DELAY_MS: '-5' }), /SIM_CHAT_NEW_DELAY_MS/)
})

t.test('the delays are honoured over real sockets', async (t) => {
  const s = await sim(t, { latency: { chatNewDelayMs: 120, firstFrameDelayMs: 200, frameDelayMs: 15, jitterPct: 0 } })
  const tok = await token(s)
  let t0 = performance.now()
  const chatId = await newChat(s, tok)
  t.ok(performance.now() - t0 >= 110, 'chats/new waited for its delay')

  t0 = performance.now()
  const res = await completion(s, tok, chatId)
  const headersAt = performance.now() - t0
  t.equal(res.statusCode, 200)
  let firstAt: number | undefined
  let text = ''
  for await (const chunk of res.body) {
    firstAt ??= performance.now() - t0
    text += String(chunk)
  }
  const total = performance.now() - t0
  const frames = text.split('\n\n').filter((b) => b.startsWith('data: ')).length
  t.ok(frames > 3, 'several frames')
  t.ok(firstAt! >= 190, `first frame after its delay (${firstAt!.toFixed(0)} ms)`)
  t.ok(headersAt < firstAt!, 'the headers come before the first frame')
  t.ok(total >= 190 + (frames - 1) * 15 * 0.9, `frames paced (${frames} frames in ${total.toFixed(0)} ms)`)
  // A scenario's frame delay wins over the profile's.
  s.queue(s.accounts[0]!.email, { frameDelayMs: 0, answer: 'Quick one' })
  const chat2 = await newChat(s, tok)
  const t1 = performance.now()
  const quick = await completion(s, tok, chat2)
  await quick.body.text()
  const quickMs = performance.now() - t1
  t.ok(quickMs >= 190, 'the first frame still waits')
})

t.test('the realistic profile by name, and no delay by default', async (t) => {
  const s = await sim(t, { latency: { profile: 'realistic' } })
  const tok = await token(s)
  const t0 = performance.now()
  await newChat(s, tok)
  t.ok(performance.now() - t0 >= 120, 'realistic chats/new takes ~150 ms')
  const fast = await sim(t, {})
  const ftok = await token(fast)
  const t1 = performance.now()
  const res = await completion(fast, ftok, await newChat(fast, ftok))
  await res.body.text()
  t.ok(performance.now() - t1 < 5_000, 'instant answers (no assertion on a loaded machine beyond sanity)')
})

t.test('timers end when the client leaves or the simulator closes', async (t) => {
  const s = await startSimulator({ latency: { chatNewDelayMs: 30_000, firstFrameDelayMs: 30_000, jitterPct: 0 } })
  const fast = await sim(t, { latency: { firstFrameDelayMs: 30_000 } })
  const tok = await token(fast)
  const chatId = await newChat(fast, tok)
  const before = timeouts()
  // A client that leaves while the first frame waits: the simulator's timer goes with it.
  const ac = new AbortController()
  const res = await completion(fast, tok, chatId, ac.signal)
  t.equal(res.statusCode, 200, 'headers first')
  t.ok(timeouts() > before, 'a timer waits for the first frame')
  ac.abort()
  await res.body.text().catch(() => undefined)
  for (let i = 0; i < 100 && !fast.log().at(-1)!.closed; i++) await new Promise((r) => setTimeout(r, 20))
  t.ok(fast.log().at(-1)!.aborted, 'the simulator saw the client leave')
  t.ok(await settlesTo(before), 'its timer is cleared')

  // chats/new waiting for its delay when the simulator closes.
  const stok = await token(s)
  const pending = newChat(s, stok).catch((err: unknown) => err)
  for (let i = 0; i < 100 && s.log().at(-1)?.path !== '/api/v2/chats/new'; i++) await new Promise((r) => setTimeout(r, 20))
  await new Promise((r) => setTimeout(r, 50))
  const t0 = performance.now()
  await s.close()
  t.ok(performance.now() - t0 < 5_000, 'close does not wait for the delay')
  t.ok(await pending instanceof Error, 'the pending request was cut')
  t.ok(await settlesTo(before), 'no timer left behind')
})
