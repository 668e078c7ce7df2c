/**
 * Fault suite (operations issue): upstream drops, slow first bytes, 5xx bursts, anti-bot pages,
 * rate-limit storms and clients leaving at random points, against the simulator over real sockets.
 * Every answer is a success or an honest error (never a hang, never a short success); afterwards
 * nothing leaks (gateway leases, live requests, upstream slots, upstream requests, timers, sockets),
 * the pool recovers once the cooldowns are over, and the state file is intact.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildServer } from '../../src/index.js'
import { JsonStateFile } from '../../src/state.js'
import type { Scenario, Simulator } from '../../src/simulator/index.js'
import { sseData, startSim } from '../helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Active handles of one kind in this process (sockets, timers). */
function resources (kind: string): number {
  return process.getActiveResourcesInfo().filter((r) => r === kind).length
}

async function until (cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await sleep(10)
  }
  return true
}

/** A deterministic pseudo-random sequence (the suite must be reproducible). */
function lcg (seed: number): () => number {
  let x = seed
  return () => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648 }
}

interface Outcome { status: number; kind: 'ok' | 'error_status' | 'error_frame' | 'aborted'; code?: string }

/** One request; checks that it ended as a success or an honest error, never a truncated success. */
async function attempt (url: string, stream: boolean, abortAfterMs?: number): Promise<Outcome> {
  const ac = new AbortController()
  const timer = abortAfterMs === undefined ? undefined : setTimeout(() => ac.abort(), abortAfterMs)
  try {
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream })), signal: ac.signal })
    const text = await res.text()
    if (res.status !== 200) {
      const j = JSON.parse(text) as { error: { code: string; message: string } }
      if (typeof j.error?.message !== 'string') throw new Error(`error ${res.status} without the envelope: ${text}`)
      return { status: res.status, kind: 'error_status', code: j.error.code }
    }
    if (!stream) {
      const j = JSON.parse(text) as any
      if (!j.choices?.[0]?.message?.content) throw new Error(`a 200 without content: ${text}`)
      return { status: 200, kind: 'ok' }
    }
    const data = sseData(text)
    if (data.at(-1) !== '[DONE]') throw new Error(`a stream that did not end with [DONE]: ${text.slice(-200)}`)
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as any)
    const err = chunks.find((c) => c.error)
    if (err) return { status: 200, kind: 'error_frame', code: err.error.code }
    if (chunks.filter((c) => c.choices?.[0]?.finish_reason).length !== 1) throw new Error('a stream without exactly one finish_reason')
    return { status: 200, kind: 'ok' }
  } catch (err) {
    if (ac.signal.aborted) return { status: 0, kind: 'aborted' }
    throw err
  } finally {
    clearTimeout(timer)
  }
}

function inFlightUpstream (sim: Simulator): number {
  return sim.log().filter((e) => !e.closed).length
}

t.test('faults: every answer is a success or an honest error; nothing leaks; the pool recovers; state intact', async (t) => {
  const sim = await startSim(t, { demoAccounts: 3, frameChars: 8 })
  const emails = sim.accounts.map((a) => a.email)
  const dir = mkdtempSync(join(tmpdir(), 'qg-faults-'))
  const statePath = join(dir, 'state.json')
  let clock = Date.now()
  const timersBefore = resources('Timeout')
  const socketsBefore = resources('TCPSocketWrap')
  const app = await buildServer({
    qwenBaseUrl: sim.url,
    cookies: sim.accounts.map((a) => a.cookie),
    // No ready chats: their background creations would hold upstream slots during the exact checks.
    readyChatsPerIdentity: 0,
    now: () => clock,
    stateFile: new JsonStateFile(statePath),
    stateSecret: 'a-test-secret-that-is-long-enough-0123456789',
    upstreamFirstByteTimeoutMs: 300,
    upstreamIdleTimeoutMs: 400,
    keepAliveIntervalMs: 100,
    requestTimeoutMs: 5000,
    shutdownGraceMs: 2000,
  }, { logger: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await app.qwenTokens.ready()
  t.equal((await attempt(url, false)).kind, 'ok', 'warm')

  const all = (s: Scenario, times = 1) => { for (const e of emails) for (let i = 0; i < times; i++) sim.queue(e, s) }
  /** Each fault group starts with a clean slate: no queued scenario, every cooldown and breaker over. */
  const fresh = () => { sim.reset(); clock += 24 * 3_600_000 }
  const outcomes: Outcome[] = []
  const batch = async (n: number, stream: (i: number) => boolean, abortAfter?: (i: number) => number | undefined) => {
    const got = await Promise.all(Array.from({ length: n }, (_, i) => attempt(url, stream(i), abortAfter?.(i))))
    outcomes.push(...got)
    return got
  }

  // Drops mid-stream: a stream that already committed gets an error frame; non-stream fails over.
  all({ dropAfterFrames: 3 }, 2)
  const drops = await batch(6, (i) => i % 2 === 0)
  t.ok(drops.every((o) => o.kind === 'ok' || o.code === 'upstream_error'), `drops: ${JSON.stringify(drops)}`)
  // Slow first byte past the timeout, on every account: 504 after the failover ran out. (undici checks
  // its timeouts on a coarse clock, so the delay is well past the 300 ms budget.)
  fresh()
  all({ firstByteDelayMs: 2000 })
  const slow = await batch(1, () => false)
  t.same(slow.map((o) => [o.status, o.code]), [[504, 'upstream_timeout']])
  // 5xx bursts.
  fresh()
  all({ fail: { status: 500 } }, 2)
  const bursts = await batch(4, (i) => i % 2 === 1)
  t.ok(bursts.every((o) => o.kind === 'ok' || (o.status === 502 && o.code === 'upstream_error')), `5xx: ${JSON.stringify(bursts)}`)
  // Anti-bot pages (HTML and JSON) on every account.
  fresh()
  for (const [i, e] of emails.entries()) sim.queue(e, { fail: i % 2 === 0 ? 'challenge_html' : 'challenge_json' })
  const challenged = await batch(1, () => true)
  t.same(challenged.map((o) => [o.status, o.code]), [[503, 'upstream_challenge']])
  // Clients that leave at random points of slow streams.
  fresh()
  const rnd = lcg(42)
  all({ frameDelayMs: 20 }, 4)
  const left = await batch(10, (i) => i % 3 !== 0, () => Math.floor(rnd() * 150))
  t.ok(left.every((o) => o.kind === 'ok' || o.kind === 'aborted'), `disconnects: ${JSON.stringify(left)}`)
  t.ok(left.some((o) => o.kind === 'aborted'), 'some clients did leave')
  // A rate-limit storm across all identities: 429.
  fresh()
  all({ fail: 'rate_limited', rateLimitHours: 1 })
  const storm = await batch(1, () => false)
  t.same(storm.map((o) => [o.status, o.code]), [[429, 'insufficient_quota']])
  const limited = await batch(3, () => false)
  t.ok(limited.every((o) => o.status === 429), 'while every account cools down, 429 without asking the upstream')

  // Nothing leaks.
  t.ok(await until(() => inFlightUpstream(sim) === 0), 'no upstream request left in flight')
  t.ok(await until(() => app.qwenLifecycle.live.size === 0), 'no live request left')
  t.equal(app.qwenUpstream.slots?.inUse, 0, 'every upstream slot came back')
  for (const id of app.qwenPool.identities) t.equal(app.qwenPool.inFlightOf(id), 0, `${id.label}: no lease left`)

  // The pool recovers once the cooldowns are over.
  clock += 2 * 3_600_000
  sim.reset()
  const recovered = await batch(6, (i) => i % 2 === 0)
  t.ok(recovered.every((o) => o.kind === 'ok'), `after the cooldowns: ${JSON.stringify(recovered)}`)
  const health = await (await fetch(`${url}/health`)).json() as { identities: Array<{ available: boolean }> }
  t.ok(health.identities.every((i) => i.available), 'every identity is available again')
  t.ok(outcomes.length >= 30)

  await app.close()
  // The state file is intact: one document, current version, every identity.
  const doc = JSON.parse(readFileSync(statePath, 'utf8')) as { version: number; identities: unknown }
  t.equal(doc.version, 2)
  t.equal(Object.keys(doc.identities as object).length, 3)
  t.notOk(readFileSync(statePath, 'utf8').includes(sim.accounts[0]!.cookie.split(';')[0]!.slice(6, 30)), 'no credential in clear')
  // After close: no timer or socket of the gateway's is left (the simulator's listener stays until teardown).
  t.ok(await until(() => resources('Timeout') <= timersBefore), `timers back to ${timersBefore} (now ${resources('Timeout')})`)
  t.ok(await until(() => resources('TCPSocketWrap') <= socketsBefore), `sockets back to ${socketsBefore} (now ${resources('TCPSocketWrap')})`)
})

t.test('SIGTERM under load: streams in progress finish, new requests get 503, exit 0, state intact', async (t) => {
  const { spawn } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const server = fileURLToPath(new URL('../../dist/src/server.js', import.meta.url))
  const sim = await startSim(t, { demoAccounts: 2, frameChars: 6 })
  const cwd = mkdtempSync(join(tmpdir(), 'qg-sigterm-'))
  const child = spawn(process.execPath, [server], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', QWEN_BASE_URL: sim.url,
      COOKIE: sim.accounts.map((a) => a.cookie).join('|||'), STATE_SECRET: 'another-test-secret-long-enough-0123456789', SHUTDOWN_GRACE_MS: '10000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout!.on('data', (d) => { out += String(d) })
  child.stderr!.on('data', (d) => { out += String(d) })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.ok(await until(() => /Server listening at http:\/\/127\.0\.0\.1:\d+/.test(out), 15_000), 'listening')
  const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!
  // Eight slow streams (about 1 s each), then SIGTERM while they run.
  const answer = 'an answer long enough to still be streaming when the signal arrives'
  for (let i = 0; i < 8; i++) sim.queue(sim.accounts[i % 2]!.email, { frameDelayMs: 80, answer })
  const streams = Array.from({ length: 8 }, () => fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })),
  }).then(async (r) => ({ status: r.status, text: await r.text() })))
  t.ok(await until(() => sim.log().filter((e) => e.path === '/api/v2/chat/completions' && e.framesSent > 0).length === 8, 10_000), 'all eight are streaming')
  child.kill('SIGTERM')
  await sleep(100)
  const refused = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body()) })
  t.equal(refused.status, 503)
  t.equal(((await refused.json()) as any).error.code, 'server_shutting_down')
  for (const s of await Promise.all(streams)) {
    t.equal(s.status, 200)
    const data = sseData(s.text)
    t.equal(data.at(-1), '[DONE]')
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as any)
    t.notOk(chunks.some((c) => c.error), 'finished, not cut')
    t.equal(chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''), answer)
  }
  t.equal(await exited, 0, 'exit 0 after the drain')
  t.ok(await until(() => inFlightUpstream(sim) === 0), 'no upstream request left in flight')
  const doc = JSON.parse(readFileSync(join(cwd, 'data', 'state.json'), 'utf8')) as { version: number; identities: object }
  t.equal(doc.version, 2)
  t.equal(Object.keys(doc.identities).length, 2)
})
