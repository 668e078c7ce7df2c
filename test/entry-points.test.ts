/**
 * The built entry points as a user runs them (`npm start`, `npm run demo`): real processes, real
 * ports. `npm test` builds first (`pretest`), so dist/ is current.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { defaultAnswer } from '../src/simulator/index.js'
import { postJson, startSim } from './helpers/setup.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = (p: string) => join(root, 'dist', 'src', p)

interface Running { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }

function run (script: string, env: Record<string, string>, cwd: string): Running {
  const clean: Record<string, string> = { PATH: process.env.PATH ?? '', ...env }
  const child = spawn(process.execPath, [script], { cwd, env: clean, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => { out += String(d) })
  child.stderr!.on('data', (d) => { err += String(d) })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, out: () => out, err: () => err, exited }
}

async function until<T> (get: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = get()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('timed out waiting for the process')
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The address from Fastify's "Server listening at" log line. */
function listeningAt (log: string): string | undefined {
  const m = /Server listening at (http:\/\/[\d.]+:\d+)/.exec(log)
  return m?.[1]
}

t.test('npm start: a bad value stops start-up naming the key', async (t) => {
  const p = run(dist('server.js'), { SERVER_MODE: 'perhaps' }, mkdtempSync(join(tmpdir(), 'qg-')))
  t.equal(await p.exited, 1)
  t.match(p.err(), /Invalid configuration SERVER_MODE/)
})

t.test('npm start with no account: starts, warns, answers 503 no_upstream_identity, exits on SIGTERM', async (t) => {
  const p = run(dist('server.js'), { PORT: '0', HOST: '127.0.0.1', QWEN_BASE_URL: 'http://127.0.0.1:9' }, mkdtempSync(join(tmpdir(), 'qg-')))
  t.teardown(() => { p.child.kill('SIGKILL') })
  const base = await until(() => listeningAt(p.out()))
  t.match(p.out(), /No upstream account is configured/)
  const res = await postJson(`${base}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(res.status, 503)
  t.equal((await res.json() as any).error.code, 'no_upstream_identity')
  t.equal((await fetch(`${base}/health`)).status, 200)
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})

t.test('npm start against the simulator: env over config.json, cookie.txt, secrets never logged', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const cwd = mkdtempSync(join(tmpdir(), 'qg-'))
  writeFileSync(join(cwd, 'config.json'), JSON.stringify({ API_KEY: 'sk-from-file', QWEN_BASE_URL: 'http://127.0.0.1:9', SERVER_PORT: 1 }))
  writeFileSync(join(cwd, 'cookie.txt'), `# the demo account\n${sim.accounts[0]!.cookie}\n`)
  writeFileSync(join(cwd, '.env'), 'API_KEY=sk-from-dotenv\n')
  const p = run(dist('server.js'), { PORT: '0', HOST: '127.0.0.1', QWEN_BASE_URL: sim.url }, cwd)
  t.teardown(() => { p.child.kill('SIGKILL') })
  const base = await until(() => listeningAt(p.out()))
  const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }
  t.equal((await postJson(`${base}/v1/chat/completions`, body, { authorization: 'Bearer sk-from-file' })).status, 401, '.env wins over config.json')
  const ok = await postJson(`${base}/v1/chat/completions`, body, { authorization: 'Bearer sk-from-dotenv' })
  t.equal(ok.status, 200, 'QWEN_BASE_URL from the environment wins, cookie.txt is read')
  t.equal((await ok.json() as any).choices[0].message.content, defaultAnswer('hi'))
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
  const logs = p.out() + p.err()
  t.equal(logs.match(/"msg":"completion"/g)?.length, 1, 'one access-log line for the one completion')
  t.notMatch(logs, /"url":"\/v1\/chat\/completions"/, 'and no generic request lines for it')
  const token = /token=([^;]+)/.exec(sim.accounts[0]!.cookie)![1]!
  t.notOk(logs.includes(token), 'the token never reaches the logs')
  t.notOk(logs.includes('sk-from-dotenv'), 'the API key never reaches the logs')
})

t.test('npm start: account health survives killing the process and starting it again', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const cwd = mkdtempSync(join(tmpdir(), 'qg-'))
  const env = { PORT: '0', HOST: '127.0.0.1', QWEN_BASE_URL: sim.url, COOKIE: sim.accounts[0]!.cookie, STATE_SECRET: 'restart-secret' }
  const first = run(dist('server.js'), env, cwd)
  t.teardown(() => { first.child.kill('SIGKILL') })
  const base1 = await until(() => listeningAt(first.out()))
  const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }
  for (let k = 0; k < 3; k++) {
    sim.queue(sim.accounts[0]!.email, { fail: { status: 500 } })
    t.equal((await postJson(`${base1}/v1/chat/completions`, body)).status, 502)
  }
  const before = (await (await fetch(`${base1}/health`)).json() as any).identities[0]
  t.equal(before.state, 'degraded')
  first.child.kill('SIGTERM')
  t.equal(await first.exited, 0)
  const saved = readFileSync(join(cwd, 'data', 'state.json'), 'utf8')
  t.notOk(saved.includes(sim.accounts[0]!.cookie.split(';')[0]!.slice(6)), 'the state file holds no token in clear')

  sim.clearLog()
  const second = run(dist('server.js'), env, cwd)
  t.teardown(() => { second.child.kill('SIGKILL') })
  const base2 = await until(() => listeningAt(second.out()))
  const after = (await (await fetch(`${base2}/health`)).json() as any).identities[0]
  t.same([after.id, after.state, after.failures, after.cooldownUntil], [before.id, 'degraded', 3, before.cooldownUntil], 'same state after the restart')
  t.equal(sim.log().filter((e) => e.path === '/api/v1/auths/').length, 0, 'the sealed token was restored, not fetched again')
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})

t.test('npm run demo: prints a working curl against the bundled simulator', async (t) => {
  const p = run(dist('demo.js'), { PORT: '0', COOKIE: 'token=ignored', API_KEY: 'ignored' }, mkdtempSync(join(tmpdir(), 'qg-')))
  t.teardown(() => { p.child.kill('SIGKILL') })
  const printed = await until(() => /curl -s (http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions) -H 'content-type: application\/json' \\\n\s+-d '([^']+)'/.exec(p.out()) ?? undefined)
  const res = await postJson(printed[1]!, JSON.parse(printed[2]!))
  t.equal(res.status, 200, 'the printed request works without a key although API_KEY is set')
  t.equal((await res.json() as any).choices[0].message.content, defaultAnswer('Hello!'))
  p.child.kill('SIGINT')
  t.equal(await p.exited, 0)
})
