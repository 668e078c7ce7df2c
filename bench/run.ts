/**
 * `npm run bench`: throughput, latency and gateway CPU per request, against the bundled simulator.
 *
 * Layout (all on 127.0.0.1):
 *   this process   autocannon (load generator) + the upstream simulator (`startSimulator`)
 *   child process  the gateway alone (`bench/gateway-child.ts`), so that its CPU time
 *                  (`process.cpuUsage()` of that process) can be read apart from the rest
 * Each scenario: a warm-up run (not measured), then the measured run bracketed by two CPU snapshots
 * of the child; gateway CPU per request = (Δuser + Δsystem) / completed requests.
 *
 * Env: BENCH_DURATION   seconds per measured run (default 10)
 *      BENCH_WARMUP     seconds of warm-up per scenario (default 2)
 *      BENCH_CONNECTIONS concurrent connections (default 50)
 *      BENCH_SCENARIOS  comma-separated scenario names to run (default all)
 *      BENCH_PROFILE=1  run the child under `node --cpu-prof` and print its hotspots per scenario
 * Exit code: 0 when every scenario (warm-up included) ran without errors, timeouts, non-2xx or
 * unexpected bodies; 1 otherwise (the report flags the scenario with `!!`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { defaultAnswer, startSimulator, type Simulator } from '../src/simulator/index.js'
import { runAutocannon, type AutocannonOptions, type AutocannonResult } from './autocannon.js'
import { formatRows, summarizeProfile, type Window } from './profile.js'

const HERE = dirname(fileURLToPath(import.meta.url))
/** The repository root (this file runs from `dist/bench/`). */
const ROOT = resolve(HERE, '..', '..')
const CHILD = join(HERE, 'gateway-child.js')

const PROMPT = 'Hello'
const MODEL = 'qwen3-max'
/** The per-request CPU budget of the gateway, in milliseconds. */
const TARGET_CPU_MS = 1

// ---- configuration ------------------------------------------------------------------------------

function numberEnv (name: string, dflt: number, min: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return dflt
  const v = Number(raw)
  if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number >= ${min}, got ${raw}`)
  return v
}

const DURATION = numberEnv('BENCH_DURATION', 10, 1)
const WARMUP = numberEnv('BENCH_WARMUP', 2, 0)
const CONNECTIONS = Math.floor(numberEnv('BENCH_CONNECTIONS', 50, 1))
const PROFILE = process.env.BENCH_PROFILE === '1'
const LOADAVG = os.loadavg()

// ---- small utilities ----------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** `p`, or a rejection after `ms`. */
function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms) })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

const log = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`) }

// ---- the gateway child ----------------------------------------------------------------------------

interface CpuSnapshot {
  cpu: NodeJS.CpuUsage
  hrtimeUs: number
  memory: { rss: number; heapUsed: number }
}

interface GatewayChild {
  port: number
  proc: ChildProcess
  snapshot (): Promise<CpuSnapshot>
  close (): Promise<void>
}

function isSnapshot (m: unknown): m is CpuSnapshot {
  return typeof m === 'object' && m !== null && 'cpu' in m && 'hrtimeUs' in m
}

async function startGateway (sim: Simulator, profileDir: string | undefined): Promise<GatewayChild> {
  const args = [
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    CHILD,
  ]
  const proc = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
    env: {
      ...process.env,
      BENCH_QWEN_BASE_URL: sim.url,
      BENCH_COOKIES: JSON.stringify(sim.accounts.map((a) => a.cookie)),
    },
  })
  let exited = false
  const exit = new Promise<void>((resolve) => proc.once('exit', () => { exited = true; resolve() }))

  const port = await withTimeout(new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! })
    rl.once('line', (line) => {
      rl.close()
      try {
        const p = (JSON.parse(line) as { port?: unknown }).port
        if (typeof p === 'number') resolve(p)
        else reject(new Error(`gateway child printed ${line}`))
      } catch {
        reject(new Error(`gateway child printed ${line}`))
      }
    })
    proc.once('exit', (code, signal) => reject(new Error(`gateway child exited during start-up (code ${code}, signal ${signal})`)))
    proc.once('error', reject)
  }), 20_000, 'gateway child start-up').catch((err: unknown) => {
    proc.kill('SIGKILL')
    throw err
  })
  proc.stdout!.resume() // nothing more is expected there; never let the pipe fill up

  return {
    port,
    proc,
    snapshot () {
      return withTimeout(new Promise<CpuSnapshot>((resolve, reject) => {
        const onMessage = (m: unknown): void => {
          if (!isSnapshot(m)) return
          proc.off('message', onMessage)
          resolve(m)
        }
        proc.on('message', onMessage)
        if (!proc.send('cpu')) reject(new Error('gateway child IPC channel is closed'))
      }), 5_000, 'gateway CPU snapshot')
    },
    async close () {
      if (exited) return
      if (proc.connected) proc.send('close')
      else proc.kill('SIGTERM')
      // The child exits after app.close(); with --cpu-prof it also writes its profile first.
      const ok = await withTimeout(exit, 15_000, 'gateway child exit').then(() => true, () => false)
      if (!ok) {
        log('gateway child did not exit in time, killing it')
        proc.kill('SIGKILL')
        await withTimeout(exit, 5_000, 'gateway child kill').catch(() => undefined)
      }
    },
  }
}

// ---- scenarios ------------------------------------------------------------------------------------

interface Scenario {
  name: string
  /** Requests go through the gateway (its CPU is measured). */
  gateway: boolean
  what: string
  request: Pick<AutocannonOptions, 'url' | 'method' | 'headers' | 'body'>
  /** Cheap per-response check (ASCII markers only: autocannon joins body chunks as strings). */
  verifyBody: (body: string) => boolean
  /** One full request, checked thoroughly, before the load. Throws on failure. */
  sanity: () => Promise<void>
}

const chatBody = (stream: boolean): string =>
  JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], ...(stream ? { stream: true } : {}) })

async function expectOk (res: Response, what: string): Promise<string> {
  const text = await res.text()
  if (res.status < 200 || res.status > 299) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`)
  return text
}

function scenarios (gatewayUrl: string, sim: Simulator, token: string): Scenario[] {
  const expected = defaultAnswer(PROMPT)
  const completions = `${gatewayUrl}/v1/chat/completions`
  const json = { 'content-type': 'application/json' }
  const bearer = { authorization: `Bearer ${token}` }
  const newChatBody = JSON.stringify({ models: [MODEL], chat_type: 't2t', chat_mode: 'normal', timestamp: Date.now() })
  return [
    {
      name: 'gateway non-stream',
      gateway: true,
      what: `POST /v1/chat/completions ${chatBody(false)}`,
      request: { url: completions, method: 'POST', headers: json, body: chatBody(false) },
      verifyBody: (b) => b.includes('"object":"chat.completion"') && b.includes('"finish_reason":"stop"'),
      async sanity () {
        const text = await expectOk(await fetch(completions, { method: 'POST', headers: json, body: chatBody(false) }), this.name)
        const r = JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown }; finish_reason?: unknown }> }
        const c = r.choices?.[0]
        if (c?.message?.content !== expected || c.finish_reason !== 'stop') throw new Error(`${this.name}: unexpected body ${text.slice(0, 300)}`)
      },
    },
    {
      name: 'gateway stream',
      gateway: true,
      what: `POST /v1/chat/completions ${chatBody(true)}`,
      request: { url: completions, method: 'POST', headers: json, body: chatBody(true) },
      verifyBody: (b) => b.endsWith('data: [DONE]\n\n') && b.includes('"finish_reason":"stop"') && !b.includes('"error"'),
      async sanity () {
        const res = await fetch(completions, { method: 'POST', headers: json, body: chatBody(true) })
        const text = await expectOk(res, this.name)
        if (!res.headers.get('content-type')?.startsWith('text/event-stream')) throw new Error(`${this.name}: content-type ${res.headers.get('content-type')}`)
        const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
        if (data.at(-1) !== '[DONE]') throw new Error(`${this.name}: stream does not end with [DONE]`)
        let content = ''
        for (const d of data.slice(0, -1)) {
          const chunk = JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> }
          content += chunk.choices?.[0]?.delta?.content ?? ''
        }
        if (content !== expected) throw new Error(`${this.name}: streamed content ${JSON.stringify(content)} != ${JSON.stringify(expected)}`)
      },
    },
    {
      name: 'simulator GET /api/models',
      gateway: false,
      what: 'GET /api/models with Authorization: Bearer <token>',
      request: { url: `${sim.url}/api/models`, method: 'GET', headers: bearer },
      verifyBody: (b) => b.startsWith('{"data":[{'),
      async sanity () {
        const text = await expectOk(await fetch(`${sim.url}/api/models`, { headers: bearer }), this.name)
        const r = JSON.parse(text) as { data?: Array<{ id?: unknown }> }
        if (!r.data?.some((m) => m.id === MODEL)) throw new Error(`${this.name}: ${MODEL} not listed`)
      },
    },
    {
      name: 'simulator POST /api/v2/chats/new',
      gateway: false,
      what: `POST /api/v2/chats/new ${newChatBody} with Authorization: Bearer <token>`,
      request: { url: `${sim.url}/api/v2/chats/new`, method: 'POST', headers: { ...json, ...bearer }, body: newChatBody },
      verifyBody: (b) => b.includes('"success":true'),
      async sanity () {
        const text = await expectOk(await fetch(`${sim.url}/api/v2/chats/new`, { method: 'POST', headers: { ...json, ...bearer }, body: newChatBody }), this.name)
        const r = JSON.parse(text) as { success?: unknown; data?: { id?: unknown } }
        if (r.success !== true || typeof r.data?.id !== 'string') throw new Error(`${this.name}: unexpected body ${text.slice(0, 300)}`)
      },
    },
  ]
}

// ---- measuring ------------------------------------------------------------------------------------

interface Measured {
  scenario: Scenario
  result: AutocannonResult
  /** Gateway child CPU over the measured run, microseconds (gateway scenarios only). */
  gatewayCpuUs: number | undefined
  /** Wall time of the measured run as seen by the child, microseconds. */
  gatewayWallUs: number | undefined
  /** This process's CPU (autocannon + simulator) over the measured run, microseconds. */
  benchCpuUs: number
  benchWallUs: number
  window: Window | undefined
  gatewayRssMb: number | undefined
  /** Problems during the (unmeasured) warm-up, described; undefined when there were none. */
  warmupProblems: string | undefined
  /** CPU used by every other process on the machine over the measured run, microseconds (from /proc/stat). */
  otherCpuUs: number
}

/** Busy CPU time of the whole machine so far (all cores), microseconds. */
function machineBusyUs (): number {
  let ms = 0
  for (const c of os.cpus()) ms += c.times.user + c.times.nice + c.times.sys + c.times.irq
  return ms * 1000
}

const problems = (r: AutocannonResult): number => r.errors + r.timeouts + r.non2xx + r.mismatches

/** Time for in-flight work (requests cut off when a run stops) to drain before a snapshot. */
const SETTLE_MS = 300

async function measure (s: Scenario, gw: GatewayChild, sim: Simulator): Promise<Measured> {
  const opts: AutocannonOptions = {
    ...s.request,
    title: s.name,
    connections: CONNECTIONS,
    timeout: 10,
    verifyBody: s.verifyBody,
  }
  let warmupProblems: string | undefined
  if (WARMUP > 0) {
    log(`${s.name}: warm-up ${WARMUP} s`)
    const w = await runAutocannon({ ...opts, duration: WARMUP })
    if (problems(w) > 0) {
      warmupProblems = `${w.errors} errors, ${w.timeouts} timeouts, ${w.non2xx} non-2xx, ${w.mismatches} bad bodies`
      log(`${s.name}: warm-up had ${warmupProblems}`)
    }
  }
  // Chats created so far are of no further use; dropping them keeps the simulator's heap flat.
  sim.reset()
  await sleep(SETTLE_MS)
  log(`${s.name}: measuring ${DURATION} s`)
  const g0 = s.gateway ? await gw.snapshot() : undefined
  const m0 = machineBusyUs()
  const b0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const result = await runAutocannon({ ...opts, duration: DURATION })
  await sleep(SETTLE_MS)
  const g1 = s.gateway ? await gw.snapshot() : undefined
  const b1 = process.cpuUsage(b0)
  const t1 = process.hrtime.bigint()
  const m1 = machineBusyUs()
  sim.reset()
  const gatewayCpuUs = g0 && g1 ? (g1.cpu.user - g0.cpu.user) + (g1.cpu.system - g0.cpu.system) : undefined
  const benchCpuUs = b1.user + b1.system
  return {
    scenario: s,
    result,
    gatewayCpuUs,
    gatewayWallUs: g0 && g1 ? g1.hrtimeUs - g0.hrtimeUs : undefined,
    benchCpuUs,
    // In the simulator scenarios the gateway's CPU is not read: it is idle, and counts (negligibly) as other.
    otherCpuUs: Math.max(0, (m1 - m0) - benchCpuUs - (gatewayCpuUs ?? 0)),
    benchWallUs: Number((t1 - t0) / 1000n),
    window: g0 && g1 ? { start: g0.hrtimeUs, end: g1.hrtimeUs } : undefined,
    gatewayRssMb: g1 ? g1.memory.rss / 2 ** 20 : undefined,
    warmupProblems,
  }
}

// ---- reporting ------------------------------------------------------------------------------------

function table (rows: Measured[]): string {
  const head = [
    'scenario', 'req/s (mean)', 'p50 ms', 'p99 ms', 'requests', 'errors', 'non-2xx', 'bad body',
    'gateway CPU ms/req', 'gateway CPU %', 'bench proc CPU ms/req', 'other procs CPU %',
  ]
  const body = rows.map((m) => {
    const r = m.result
    const n = r.requests.total
    return [
      problems(r) > 0 || n === 0 ? `${m.scenario.name} !! ERRORS` : m.scenario.name,
      r.requests.mean.toFixed(0),
      r.latency.p50.toFixed(0),
      r.latency.p99.toFixed(0),
      String(n),
      String(r.errors + r.timeouts),
      String(r.non2xx),
      String(r.mismatches),
      m.gatewayCpuUs !== undefined && n > 0 ? (m.gatewayCpuUs / 1000 / n).toFixed(3) : '—',
      m.gatewayCpuUs !== undefined && m.gatewayWallUs ? `${((100 * m.gatewayCpuUs) / m.gatewayWallUs).toFixed(0)}%` : '—',
      n > 0 ? (m.benchCpuUs / 1000 / n).toFixed(3) : '—',
      `${((100 * m.otherCpuUs) / m.benchWallUs).toFixed(0)}%`,
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const sep = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`
  return [line(head), sep, ...body.map(line)].join('\n')
}

function machine (): string {
  const cpus = os.cpus()
  return [
    `Date:    ${new Date().toISOString()}`,
    `Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores (available parallelism ${os.availableParallelism()}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()} ${os.arch()}`,
    `Node:    ${process.version}`,
    `Load average at start: ${LOADAVG.map((l) => l.toFixed(2)).join(' ')}`,
    `Load:    autocannon, ${CONNECTIONS} connections, ${DURATION} s measured per scenario after ${WARMUP} s of warm-up, 127.0.0.1 only` +
      (PROFILE ? ' — PROFILED RUN (--cpu-prof adds overhead; CPU numbers are not reference numbers)' : ''),
  ].join('\n')
}

// ---- main -----------------------------------------------------------------------------------------

async function main (): Promise<number> {
  const only = process.env.BENCH_SCENARIOS?.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
  const profileDir = PROFILE ? mkdtempSync(join(os.tmpdir(), 'qwen-gateway-bench-prof-')) : undefined

  const sim = await startSimulator({ demoAccounts: 2 })
  let gw: GatewayChild | undefined
  const cleanup = async (): Promise<void> => {
    await gw?.close().catch((err: unknown) => log(`closing the gateway child failed: ${String(err)}`))
    await withTimeout(sim.close(), 5_000, 'simulator close').catch((err: unknown) => log(String(err)))
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal} received, shutting down`)
    void cleanup().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const measured: Measured[] = []
  let failure: string | undefined
  try {
    gw = await startGateway(sim, profileDir)
    log(`simulator ${sim.url}, gateway http://127.0.0.1:${gw.port} (pid ${gw.proc.pid}), bench pid ${process.pid}`)

    const account = sim.accounts[0]
    const auth = await fetch(`${sim.url}/api/v1/auths/`, { headers: { cookie: account.cookie } })
    const token = (JSON.parse(await expectOk(auth, 'GET /api/v1/auths/')) as { token?: unknown }).token
    if (typeof token !== 'string') throw new Error('GET /api/v1/auths/ returned no token')

    const all = scenarios(`http://127.0.0.1:${gw.port}`, sim, token)
    const selected = only ? all.filter((s) => only.some((o) => s.name.toLowerCase().includes(o))) : all
    if (selected.length === 0) throw new Error(`BENCH_SCENARIOS=${process.env.BENCH_SCENARIOS} matches none of: ${all.map((s) => s.name).join(', ')}`)

    for (const s of selected) await s.sanity()
    log('sanity checks passed (full bodies verified once per scenario)')

    for (const s of selected) measured.push(await measure(s, gw, sim))
  } catch (err) {
    failure = (err as Error).stack ?? String(err)
  } finally {
    await cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }

  const out: string[] = ['', machine(), '']
  if (measured.length > 0) {
    out.push(table(measured), '')
    out.push('Scenarios:')
    for (const m of measured) out.push(`  ${m.scenario.name}: ${m.scenario.what}`)
    out.push(
      '',
      'gateway CPU ms/req = (user + system CPU of the gateway process over the measured run) / completed requests;',
      'gateway CPU % = that CPU time / wall time (100% = one core); bench proc CPU = autocannon + simulator (this process);',
      `other procs CPU % = the rest of the machine's busy time (/proc/stat) over the run (${os.cpus().length * 100}% = all cores).`,
      'errors = socket errors + timeouts; bad body = responses (any status) that failed the scenario\'s body check.',
      'Each gateway request costs two upstream calls to the simulator (chats/new + completions).',
    )
    for (const m of measured) {
      if (m.gatewayRssMb !== undefined) out.push(`  gateway RSS after "${m.scenario.name}": ${m.gatewayRssMb.toFixed(0)} MiB`)
    }
    out.push('')
    for (const m of measured) {
      if (m.gatewayCpuUs === undefined || m.result.requests.total === 0) continue
      const ms = m.gatewayCpuUs / 1000 / m.result.requests.total
      out.push(`Target <= ${TARGET_CPU_MS} ms gateway CPU/request — ${m.scenario.name}: ${ms.toFixed(3)} ms → ${ms <= TARGET_CPU_MS ? 'MET' : 'MISSED'}`)
    }
  }

  for (const m of measured) {
    const other = (100 * m.otherCpuUs) / m.benchWallUs
    if (other > 10) {
      out.push(`!  ${m.scenario.name}: other processes used ${other.toFixed(0)}% CPU during the run — req/s and latency are disturbed (CPU per request much less so)`)
    }
  }

  const flagged = measured.filter((m) => problems(m.result) > 0 || m.result.requests.total === 0)
  const warmupFlagged = measured.filter((m) => m.warmupProblems !== undefined)
  for (const m of warmupFlagged) out.push(`!! ${m.scenario.name}: the (unmeasured) warm-up had ${m.warmupProblems} — THIS RUN HAS ERRORS`)
  for (const m of flagged) {
    const r = m.result
    const codes = Object.entries(r.statusCodeStats).map(([c, v]) => `${c}×${v.count}`).join(', ')
    out.push(`!! ${m.scenario.name}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx, ${r.mismatches} bad bodies, ` +
      `${r.requests.total} completed (status codes: ${codes || 'none'}) — THIS RUN HAS ERRORS`)
  }
  if (failure) out.push(`!! benchmark aborted: ${failure}`)
  process.stdout.write(`${out.join('\n')}\n`)

  if (profileDir) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
    if (files.length === 0) {
      process.stdout.write(`\nno .cpuprofile in ${profileDir} (did the child exit normally?)\n`)
    } else {
      const file = join(profileDir, files[0])
      const sections = [`\nGateway CPU profile: ${file}`]
      for (const m of measured) {
        if (!m.window) continue
        const sum = summarizeProfile(file, [m.window], ROOT, 25)
        sections.push(
          '',
          `=== ${m.scenario.name}: ${sum.busyMs.toFixed(0)} ms busy, ${sum.idleMs.toFixed(0)} ms idle in ${sum.samples} samples` +
            `${sum.wholeProfile ? ' (window did not match: WHOLE profile)' : ''} ===`,
          formatRows('By area (self time):', sum.areas.slice(0, 12)),
          formatRows('By file (self time):', sum.files.slice(0, 15)),
          formatRows('By function (self time):', sum.functions),
        )
      }
      process.stdout.write(`${sections.join('\n')}\n`)
    }
  }

  return failure !== undefined || flagged.length > 0 || warmupFlagged.length > 0 ? 1 : 0
}

// Whatever happens, the process ends in bounded time.
const budgetMs = 4 * (WARMUP + DURATION + 2) * 1000 + 120_000
const watchdog = setTimeout(() => {
  process.stderr.write(`[bench] watchdog: still running after ${budgetMs} ms, exiting\n`)
  process.exit(2)
}, budgetMs)
watchdog.unref()

main().then((code) => {
  process.exitCode = code
  // Nothing should be left running; if a handle lingers, do not wait for it.
  setTimeout(() => process.exit(code), 2_000).unref()
}, (err: unknown) => {
  process.stderr.write(`[bench] failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
