/**
 * The live probe (`npm run probe`), never against the real site: against the simulator (clean) and
 * against the simulator behind a proxy that injects one named drift at a time. In-process through
 * `probeMain`/`runProbe`, and as the built entry point in a real process.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { formatReport, runProbe, sample, type ProbeReport } from '../src/probe/index.js'
import { probeClient } from '../src/probe/client.js'
import { probeMain, USAGE } from '../src/probe/main.js'
import type { Simulator } from '../src/simulator/index.js'
import { startDriftProxy, type Drift } from './helpers/drift-proxy.js'
import { startSim } from './helpers/setup.js'

const root = fileURLToPath(new URL('..', import.meta.url))

interface Teardown { teardown: (fn: () => unknown) => void }

interface MainRun { code: number; out: string; err: string }

async function main (env: Record<string, string | undefined>, argv: string[] = [], files: Record<string, string> = {}): Promise<MainRun> {
  let out = ''
  let err = ''
  const code = await probeMain({ argv, env, readFile: (p) => files[p], out: (s) => { out += s }, err: (s) => { err += s } })
  return { code, out, err }
}

async function viaDrift (t: Teardown, sim: Simulator, drift: Drift): Promise<string> {
  const proxy = await startDriftProxy(sim.url, drift)
  t.teardown(() => proxy.close())
  return proxy.url
}

async function probeJson (sim: Simulator, baseUrl: string): Promise<{ code: number; report: ProbeReport }> {
  const r = await main({ COOKIE: sim.accounts[0]!.cookie, QWEN_BASE_URL: baseUrl }, ['--json'])
  return { code: r.code, report: JSON.parse(r.out) as ProbeReport }
}

const failed = (r: ProbeReport): string[] => r.checks.filter((c) => !c.ok).map((c) => c.name)
const check = (r: ProbeReport, name: string) => r.checks.find((c) => c.name === name)

t.test('against the simulator: every expectation ok, exit 0, a handful of requests, the chat deleted', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const account = sim.accounts[0]!
  const r = await main({ COOKIE: account.cookie, QWEN_BASE_URL: sim.url })
  t.equal(r.code, 0, r.err)
  const lines = r.out.trim().split('\n')
  t.equal(lines[0], `qwen-gateway probe of ${sim.url}`)
  for (const name of [
    'auth: token from the cookie', 'model list: parses', 'model list: has a thinking-capable model', 'chats/new: returns an id',
    'completion: answers with an event stream', 'completion: first frame is response.created', 'completion: every frame understood',
    'completion: answer phase present', 'completion: answer text', 'completion: finished frame', 'completion: usage present',
    'thinking: reasoning frames', 'thinking: answer phase present', 'thinking: finished frame', 'delete: chat deleted',
  ]) t.ok(lines.some((l) => l.startsWith(`ok    ${name}`)), name)
  t.match(r.out, /ok {4}model list: parses \(\d+ models\)/)
  t.match(lines.at(-1), /^clean: \d+ checks passed, 6 upstream requests$/)
  t.notOk(lines.some((l) => l.startsWith('DRIFT')))

  const upstream = sim.log()
  t.equal(upstream.length, 6, 'token, models, chats/new, two completions, delete')
  t.same(upstream.map((e) => e.method), ['GET', 'GET', 'POST', 'POST', 'POST', 'DELETE'])
  const turns = upstream.filter((e) => e.path.startsWith('/api/v2/chat/completions'))
  const bodies = turns.map((e) => e.body as { messages: Array<{ feature_config: { thinking_enabled: boolean } }> })
  t.same(bodies.map((b) => b.messages[0]!.feature_config.thinking_enabled), [false, true], 'one plain turn, one with thinking')
  t.same(sim.chats(account.email), [], 'the chat is deleted')
})

t.test('the report is redacted: no cookie, no token, answer text cut to a few characters', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const account = sim.accounts[0]!
  const answer = 'The quick brown fox jumps over the lazy dog'
  const turns = [{ answer }, { answer, reasoning: 'Let me think about this carefully' }]
  sim.queue(account.email, ...turns, ...turns)
  const text = await main({ COOKIE: account.cookie, QWEN_BASE_URL: sim.url })
  const json = await main({ COOKIE: account.cookie, QWEN_BASE_URL: sim.url }, ['--json'])
  t.equal(text.code, 0)
  t.equal(json.code, 0)
  const token = /token=([^;]+)/.exec(account.cookie)![1]!
  for (const out of [text.out, json.out]) {
    t.notOk(out.includes(token), 'no session token')
    t.notOk(out.includes(account.cookie), 'no cookie')
    t.notOk(out.includes('quick'), 'no answer text beyond a few characters')
    t.notOk(out.includes('think about'), 'no reasoning text beyond a few characters')
    t.notOk(/eyJ[\w-]{4,}\./.test(out), 'no JWT at all')
  }
  t.match(text.out, /completion: answer text \("The "…\)/)
  const report = JSON.parse(json.out) as ProbeReport
  t.equal(report.ok, true)
  t.equal(report.upstream, sim.url)
  t.equal(report.requests, 6)
  t.equal(check(report, 'completion: answer text')!.detail, '"The "…')
  t.equal(sample('ok'), '"ok"', 'short answers are shown whole')
})

t.test('each injected drift is reported by name, exit 1', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })

  await t.test('none: the proxy alone changes nothing', async (t) => {
    const { code, report } = await probeJson(sim, await viaDrift(t, sim, 'none'))
    t.equal(code, 0)
    t.same(failed(report), [])
  })

  await t.test('a renamed field in completion frames (choices → outputs)', async (t) => {
    const { code, report } = await probeJson(sim, await viaDrift(t, sim, 'renamed-field'))
    t.equal(code, 1)
    t.equal(report.ok, false)
    const c = check(report, 'completion: every frame understood')!
    t.equal(c.ok, false)
    t.match(c.detail, /frames not understood \(keys: outputs/)
    t.equal(check(report, 'completion: answer text')!.ok, false)
    t.equal(check(report, 'completion: finished frame')!.ok, false)
    t.equal(check(report, 'thinking: reasoning frames')!.ok, false)
    t.equal(check(report, 'model list: parses')!.ok, true, 'what did not change stays ok')
    t.equal(check(report, 'delete: chat deleted')!.ok, true)
    t.same(sim.chats(sim.accounts[0]!.email), [], 'the chat is deleted even after drift')
  })

  await t.test('a missing phase (answer frames without phase)', async (t) => {
    const { code, report } = await probeJson(sim, await viaDrift(t, sim, 'missing-phase'))
    t.equal(code, 1)
    const c = check(report, 'completion: answer phase present')!
    t.equal(c.ok, false)
    t.match(c.detail, /\d+ answer frames without "phase"/)
    t.equal(check(report, 'completion: finished frame')!.ok, false)
    t.equal(check(report, 'completion: answer text')!.ok, true, 'the text itself still reads as the answer')
    t.equal(check(report, 'thinking: reasoning frames')!.ok, true)
  })

  await t.test('a new error body on completions', async (t) => {
    const { code, report } = await probeJson(sim, await viaDrift(t, sim, 'new-error-body'))
    t.equal(code, 1)
    const c = check(report, 'completion: answers with an event stream')!
    t.equal(c.ok, false)
    t.match(c.detail, /an answer the gateway does not recognise: .*errno/)
    t.equal(check(report, 'thinking: answers with an event stream')!.ok, false)
    t.notOk(check(report, 'completion: answer text'), 'nothing to check past a failed open')
    t.equal(check(report, 'delete: chat deleted')!.ok, true)
  })

  await t.test('a changed model list shape ({models:[…]})', async (t) => {
    const { code, report } = await probeJson(sim, await viaDrift(t, sim, 'model-list-shape'))
    t.equal(code, 1)
    const c = check(report, 'model list: parses')!
    t.equal(c.ok, false)
    t.match(c.detail, /does not recognise: .*model list/)
    t.equal(report.checks.at(-1)!.name, 'model list: parses', 'the sequence stops there: nothing to pick a model from')
    t.equal(report.requests, 2)
  })
})

t.test('known upstream refusals and silences are failures too, named as such', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const account = sim.accounts[0]!
  const pc = probeClient({ qwenBaseUrl: sim.url, upstreamConnectTimeoutMs: 5_000, upstreamFirstByteTimeoutMs: 5_000, upstreamIdleTimeoutMs: 5_000, maxBufferBytes: 1 << 20 })
  t.teardown(() => pc.close())
  const run = (o: { stepTimeoutMs?: number } = {}) => runProbe({ client: pc.client, cookie: account.cookie, upstream: sim.url, ...o })

  await t.test('rate limited on completions: not drift, but not clean', async (t) => {
    sim.queue(account.email, { fail: 'rate_limited' })
    const r = await run()
    t.equal(r.ok, false)
    t.match(check(r, 'completion: answers with an event stream')!.detail, /known upstream refusal \(rate_limit/)
    t.equal(check(r, 'thinking: answers with an event stream')!.ok, true, 'the next turn still runs')
  })

  await t.test('a stream that hangs is cut by the step budget', async (t) => {
    sim.queue(account.email, { hang: true })
    const r = await run({ stepTimeoutMs: 300 })
    t.match(check(r, 'completion: answers with an event stream')!.detail, /no answer within 300 ms/)
    t.equal(check(r, 'delete: chat deleted')!.ok, true)
  })

  await t.test('chats/new refused', async (t) => {
    sim.queue(account.email, { endpoint: 'chats_new', fail: 'bad_request' })
    const r = await run()
    t.equal(check(r, 'chats/new: returns an id')!.ok, false)
    t.equal(r.checks.at(-1)!.name, 'chats/new: returns an id')
  })

  await t.test('an expired session: the token step fails and nothing else is sent', async (t) => {
    const other = sim.addAccount()
    sim.expireSession(other.email)
    sim.clearLog()
    const r = await runProbe({ client: pc.client, cookie: other.cookie, upstream: sim.url })
    t.same(r.checks.map((c) => [c.name, c.ok]), [['auth: token from the cookie', false]])
    t.equal(r.requests, 1)
    t.equal(sim.log().length, 1)
    const text = formatReport(r)
    t.match(text, /^DRIFT auth: token from the cookie: a known upstream refusal/m)
    t.match(text, /drift: 1 of 1 checks failed, 1 upstream requests/)
  })
})

t.test('usage and configuration errors: exit 2 (or 0 for --help), nothing sent', async (t) => {
  const help = await main({}, ['--help'])
  t.equal(help.code, 0)
  t.equal(help.out, USAGE)
  const unknown = await main({}, ['--jsno'])
  t.equal(unknown.code, 2)
  t.match(unknown.err, /unknown argument "--jsno"/)
  const badTimeout = await main({}, ['--timeout-ms=soon'])
  t.equal(badTimeout.code, 2)
  t.match(badTimeout.err, /--timeout-ms wants a positive integer/)
  const noCookie = await main({ QWEN_BASE_URL: 'http://127.0.0.1:9' })
  t.equal(noCookie.code, 2)
  t.match(noCookie.err, /No cookie configured: set COOKIE/)
  const badConfig = await main({ COOKIE: 'token=x', UPSTREAM_IDLE_TIMEOUT_MS: 'soon' })
  t.equal(badConfig.code, 2)
  t.match(badConfig.err, /Invalid configuration UPSTREAM_IDLE_TIMEOUT_MS/)
  const badOption = await main({ COOKIE: 'token=x', QWEN_BASE_URL: 'ftp://nowhere' })
  t.equal(badOption.code, 2)
  t.match(badOption.err, /QWEN_BASE_URL/)
})

t.test('configuration is read as npm start reads it: cookie.txt, config.json, an account proxy, --timeout-ms', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const files = {
    'cookie.txt': `# probe account\n${sim.accounts[0]!.cookie}\n`,
    'config.json': JSON.stringify({ QWEN_BASE_URL: sim.url }),
  }
  const r = await main({}, ['--timeout-ms=20000'], files)
  t.equal(r.code, 0, r.err)
  t.match(r.out, new RegExp(`probe of ${sim.url.replace(/[.]/g, '\\.')}`))

  const { startProxy } = await import('./helpers/proxy.js')
  const proxy = await startProxy()
  t.teardown(() => proxy.close())
  const viaProxy = await main({ COOKIE: `${sim.accounts[0]!.cookie} @proxy=${proxy.url}`, QWEN_BASE_URL: sim.url })
  t.equal(viaProxy.code, 0, viaProxy.err)
  t.ok(proxy.tunnels + proxy.requests > 0, 'the account proxy carried the requests')
  t.ok(proxy.seen.some((s) => s.startsWith('POST /api/v2/chat/completions')))
})

interface Spawned { code: number | null; out: string; err: string }

function spawnProbe (env: Record<string, string>, args: string[] = []): Promise<Spawned> {
  const cwd = mkdtempSync(join(tmpdir(), 'qg-probe-'))
  const child = spawn(process.execPath, [join(root, 'dist', 'src', 'probe-cli.js'), ...args], {
    cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += String(d) })
  child.stderr.on('data', (d) => { err += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  return new Promise((resolve) => child.once('exit', (code) => {
    clearTimeout(timer)
    resolve({ code, out, err })
  }))
}

t.test('npm run probe (the built entry point): 0 clean, 1 drift, 2 without a cookie', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const cookie = sim.accounts[0]!.cookie
  const clean = await spawnProbe({ COOKIE: cookie, QWEN_BASE_URL: sim.url })
  t.equal(clean.code, 0, clean.err)
  t.match(clean.out, /^clean: \d+ checks passed, 6 upstream requests$/m)

  const drift = await spawnProbe({ COOKIE: cookie, QWEN_BASE_URL: await viaDrift(t, sim, 'missing-phase') }, ['--json'])
  t.equal(drift.code, 1, drift.err)
  const report = JSON.parse(drift.out) as ProbeReport
  t.equal(check(report, 'completion: answer phase present')!.ok, false)
  t.notOk(drift.out.includes(cookie))

  const none = await spawnProbe({ QWEN_BASE_URL: sim.url })
  t.equal(none.code, 2)
  t.match(none.err, /No cookie configured/)
  t.equal(none.out, '')
})
