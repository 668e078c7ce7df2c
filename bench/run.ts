/**
 * `npm run bench`: gateway CPU per request (absolute, and as a ratio to a zero-transform floor),
 * latency at several concurrencies, and memory with many open streams, against the bundled simulator.
 *
 * Layout (all on 127.0.0.1):
 *   this process    autocannon (load generator) + the upstream simulator (`startSimulator`)
 *   gateway child   the gateway alone (`bench/gateway-child.ts`)
 *   floor child     the zero-transform floor (`bench/floor-child.ts`), when a phase needs it
 * CPU of a child = its `process.cpuUsage()` over a measured window; see BENCHMARKS.md.
 *
 * Phases (selected with BENCH_SCENARIOS, comma-separated substrings of these names):
 *   gateway non-stream, gateway stream, simulator GET /api/models, simulator POST /api/v2/chats/new
 *                      throughput at BENCH_CONNECTIONS, one window each (`throughput.ts`)
 *   ratio non-stream, ratio stream
 *                      gateway vs floor CPU per request, interleaved windows (`ratio.ts`)
 *   latency non-stream, latency stream
 *                      gateway p50/p99 at BENCH_LATENCY_CLIENTS clients (`latency.ts`)
 *   rss open streams   RSS of gateway and floor with BENCH_STREAMS open streams (`streams.ts`); runs
 *                      first, while both children are fresh
 *   ttft               time to first token against the simulator's realistic profile: the simulator's
 *                      own first frame, the gateway without and with ready chats, at
 *                      BENCH_TTFT_CLIENTS (1,50) clients (`ttft.ts`); own simulator and gateways
 * Phases can also be named on the command line: `npm run bench -- ttft` (BENCH_SCENARIOS wins).
 * Exit code: 0 when every phase (warm-ups included) ran without errors, timeouts, non-2xx or
 * unexpected bodies and every stream opened and closed; 1 otherwise (the report flags it with `!!`).
 */
import { mkdtempSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import { startChild, withTimeout, type Child } from './child.js'
import { latencyTable, runLatency, type LatencyRow } from './latency.js'
import { expectOk, floorLoad, gatewayLoad, simulatorLoads, type CheckedLoad } from './loads.js'
import { otherCpuPercent, warmUp } from './measure.js'
import { ratioTable, runRatio, type RatioResult } from './ratio.js'
import { fmt } from './stats.js'
import { growthRatio, holdStreams, streamsTable, type StreamsResult } from './streams.js'
import { profileReport, runThroughput, throughputReport, type ThroughputRow } from './throughput.js'
import { REDIS_CHILD, runRedisPhase } from './redis.js'
import { runTtft, ttftReport, type TtftResult } from './ttft.js'

const HERE = dirname(fileURLToPath(import.meta.url))
/** The repository root (this file runs from `dist/bench/`). */
const ROOT = resolve(HERE, '..', '..')

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
const RATIO_PAIRS = Math.floor(numberEnv('BENCH_RATIO_PAIRS', 3, 1))
const RATIO_WINDOW = numberEnv('BENCH_RATIO_WINDOW', 5, 1)
const LATENCY_DURATION = numberEnv('BENCH_LATENCY_DURATION', 5, 1)
const LATENCY_CLIENTS = (process.env.BENCH_LATENCY_CLIENTS ?? '1,50,500').split(',').map((s) => Number(s.trim()))
if (!LATENCY_CLIENTS.every((c) => Number.isInteger(c) && c >= 1)) throw new Error(`BENCH_LATENCY_CLIENTS must be positive integers, got ${process.env.BENCH_LATENCY_CLIENTS}`)
const STREAMS = Math.floor(numberEnv('BENCH_STREAMS', 1000, 1))
const STREAMS_OPEN_TIMEOUT_MS = 60_000
const PROFILE = process.env.BENCH_PROFILE === '1'
const LOADAVG = os.loadavg()
const TTFT_CLIENTS = (process.env.BENCH_TTFT_CLIENTS ?? '1,50').split(',').map((s) => Number(s.trim()))
if (!TTFT_CLIENTS.every((c) => Number.isInteger(c) && c >= 1)) throw new Error(`BENCH_TTFT_CLIENTS must be positive integers, got ${process.env.BENCH_TTFT_CLIENTS}`)
/** Rounds per TTFT target: 40 single requests; ~300 samples at higher concurrency. */
const TTFT_ROUNDS = (clients: number): number => Math.max(3, Math.ceil((clients === 1 ? 40 : 300) / clients))
const ONLY = (process.env.BENCH_SCENARIOS ?? process.argv.slice(2).join(',')).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)

const PHASES = [
  'gateway non-stream', 'gateway stream', 'simulator GET /api/models', 'simulator POST /api/v2/chats/new',
  'ratio non-stream', 'ratio stream', 'latency non-stream', 'latency stream', 'rss open streams', 'redis non-stream', 'ttft',
] as const
type Phase = typeof PHASES[number]
const selected = new Set<Phase>(ONLY.length > 0 ? PHASES.filter((p) => ONLY.some((o) => p.toLowerCase().includes(o))) : PHASES)
if (selected.size === 0) throw new Error(`phases ${ONLY.join(',')} match none of: ${PHASES.join(', ')}`)
/** The phases that share the main simulator and gateway child (all but ttft). */
const needsMain = PHASES.some((p) => p !== 'ttft' && selected.has(p))
const needsFloor = selected.has('ratio non-stream') || selected.has('ratio stream') || selected.has('rss open streams')

const log = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`) }

function machine (): string {
  const cpus = os.cpus()
  return [
    `Date:    ${new Date().toISOString()}`,
    `Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores (available parallelism ${os.availableParallelism()}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()} ${os.arch()}`,
    `Node:    ${process.version}`,
    `Load average at start: ${LOADAVG.map((l) => l.toFixed(2)).join(' ')}; at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `Load:    autocannon, ${CONNECTIONS} connections; throughput ${DURATION} s per scenario after ${WARMUP} s of warm-up; ` +
      `ratio ${RATIO_PAIRS} gateway/floor pairs of ${RATIO_WINDOW} s windows; latency ${LATENCY_DURATION} s at ${LATENCY_CLIENTS.join('/')} clients; ` +
      `${STREAMS} open streams; 127.0.0.1 only` +
      (PROFILE ? ' — PROFILED RUN (--cpu-prof adds overhead; CPU numbers are not reference numbers)' : ''),
  ].join('\n')
}

// ---- main -----------------------------------------------------------------------------------------

interface Results {
  throughput: ThroughputRow[]
  ratio: RatioResult[]
  latency: LatencyRow[]
  streams: StreamsResult[]
  /** Report lines of the shared-store phase (`bench/redis.ts`). */
  redis?: string[]
  ttft?: TtftResult
}

async function runPhases (sim: Simulator, gw: Child, floor: Child | undefined, r: Results): Promise<void> {
  const account = sim.accounts[0]!
  const auth = await fetch(`${sim.url}/api/v1/auths/`, { headers: { cookie: account.cookie } })
  const token = (JSON.parse(await expectOk(auth, 'GET /api/v1/auths/')) as { token?: unknown }).token
  if (typeof token !== 'string') throw new Error('GET /api/v1/auths/ returned no token')

  const throughputLoads: CheckedLoad[] = [gatewayLoad(gw.url, false), gatewayLoad(gw.url, true), ...simulatorLoads(sim, token)]
  const sanity: CheckedLoad[] = [...throughputLoads, ...(floor ? [floorLoad(floor.url, false), floorLoad(floor.url, true)] : [])]
  for (const l of sanity) await l.sanity()
  sim.reset()
  log('sanity checks passed (full bodies verified once per load)')

  // Memory first, while both children are fresh (after load runs their RSS stays high even after a
  // GC, which would hide the growth); each gets a short warm-up so compiled code and pools count in
  // the baseline, not in the growth.
  if (floor && selected.has('rss open streams')) {
    for (const l of [gatewayLoad(gw.url, true), floorLoad(floor.url, true)]) {
      log(`rss: warm-up of ${l.name}, 1 s at 10 connections`)
      const w = await warmUp(l, sim, 10, 1)
      if (w) throw new Error(`rss warm-up of ${l.name} had ${w}`)
    }
    const cfg = { streams: STREAMS, openTimeoutMs: STREAMS_OPEN_TIMEOUT_MS, openBatch: 100 }
    for (const c of [gw, floor]) r.streams.push(await holdStreams(c, sim, cfg, log))
  }
  for (const l of throughputLoads) {
    if (!selected.has(l.name as Phase)) continue
    r.throughput.push(await runThroughput(l, l.name.startsWith('gateway') ? gw : undefined, sim, CONNECTIONS, WARMUP, DURATION, log))
  }
  const ratioCfg = { pairs: RATIO_PAIRS, duration: RATIO_WINDOW, warmup: WARMUP, connections: CONNECTIONS }
  for (const stream of [false, true]) {
    if (floor && selected.has(stream ? 'ratio stream' : 'ratio non-stream')) r.ratio.push(await runRatio(stream, gw, floor, sim, ratioCfg, log))
  }
  if (selected.has('redis non-stream')) {
    const env = { BENCH_QWEN_BASE_URL: sim.url, BENCH_COOKIES: JSON.stringify(sim.accounts.map((a) => a.cookie)) }
    r.redis = await runRedisPhase(sim, r.throughput.find((x) => x.load.name === 'gateway non-stream'), { script: REDIS_CHILD(HERE), env, connections: CONNECTIONS, warmup: WARMUP, duration: DURATION, log })
  }
  for (const stream of [false, true]) {
    if (selected.has(stream ? 'latency stream' : 'latency non-stream')) {
      r.latency.push(...await runLatency(stream, gw, sim, LATENCY_CLIENTS, LATENCY_DURATION, Math.min(WARMUP, 1), log))
    }
  }
}

function report (r: Results, failure: string | undefined): { text: string; failed: boolean } {
  const out: string[] = ['', machine(), '']
  const flags: string[] = []
  if (r.throughput.length > 0) {
    out.push('## Throughput', '', ...throughputReport(r.throughput), '')
    for (const t of r.throughput) for (const p of t.problems) flags.push(`${t.load.name}: ${p}`)
  }
  if (r.ratio.length > 0) {
    out.push('## Gateway CPU per request vs the zero-transform floor (interleaved windows)', '', ratioTable(r.ratio), '')
    for (const x of r.ratio) {
      out.push(`Ratio ${x.stream ? 'stream' : 'non-stream'}: ${fmt(x.ratio, 2)}× the floor (goal <= 1.3×, limit 2×) → ${x.ratio <= 1.3 ? 'GOAL MET' : x.ratio <= 2 ? 'under the 2× limit' : 'OVER THE 2× LIMIT'}`)
      flags.push(...x.problems)
    }
    out.push('')
  }
  if (r.redis) out.push(...r.redis)
  if (r.latency.length > 0) {
    out.push('## Gateway latency by concurrent clients', '', latencyTable(r.latency), '')
    for (const l of r.latency) for (const p of l.problems) flags.push(`latency ${l.stream ? 'stream' : 'non-stream'} at ${l.connections} clients: ${p}`)
  }
  if (r.streams.length > 0) {
    const g = growthRatio(r.streams, 'growthKiB')
    const verdict = (x: number): string => (x <= 1.5 ? 'MET' : 'MISSED')
    out.push(`## Memory with ${STREAMS} open streams (slow upstream: simulator scenario \`hang\`)`, '', streamsTable(r.streams), '',
      `RSS growth per open stream, gateway / floor: ${fmt(g, 2)}× (goal <= 1.5×) → ${verdict(g)}`,
      `  half→all: ${fmt(growthRatio(r.streams, 'marginalKiB'), 2)}×; heap: ${fmt(growthRatio(r.streams, 'heapKiB'), 2)}×`, '')
    for (const s of r.streams) for (const p of s.problems) flags.push(`rss ${s.name}: ${p}`)
  }
  const windows = [...r.throughput.map((t) => t.m), ...r.ratio.flatMap((x) => x.windows.map((w) => w.m)), ...r.latency.map((l) => l.m)]
  if (windows.length > 0) {
    const others = windows.map(otherCpuPercent)
    out.push(`Other processes' CPU over the measured windows: ${fmt(Math.min(...others), 0)}–${fmt(Math.max(...others), 0)}% (200% = both cores busy with other work).`)
  }
  if (r.ttft) {
    out.push('## Time to first token (simulator `realistic` profile, no jitter: chats/new 150 ms, first frame 300 ms)', '', ...ttftReport(r.ttft), '')
    flags.push(...r.ttft.problems)
  }
  for (const f of flags) out.push(`!! ${f} — THIS RUN HAS ERRORS`)
  if (failure) out.push(`!! benchmark aborted: ${failure}`)
  return { text: out.join('\n'), failed: failure !== undefined || flags.length > 0 }
}

async function main (): Promise<number> {
  const profileDir = PROFILE ? mkdtempSync(join(os.tmpdir(), 'qwen-gateway-bench-prof-')) : undefined
  const sim = await startSimulator({ demoAccounts: 2 })
  const children: Child[] = []
  const cleanup = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.close().catch((err: unknown) => log(`closing the ${c.name} child failed: ${String(err)}`))))
    await withTimeout(sim.close(), 5_000, 'simulator close').catch((err: unknown) => log(String(err)))
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal} received, shutting down`)
    void cleanup().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const env = { BENCH_QWEN_BASE_URL: sim.url, BENCH_COOKIES: JSON.stringify(sim.accounts.map((a) => a.cookie)) }
  const results: Results = { throughput: [], ratio: [], latency: [], streams: [] }
  let failure: string | undefined
  try {
    if (needsMain) await mainPhases(sim, env, children, results, profileDir)
    if (selected.has('ttft')) {
      results.ttft = await runTtft({
        clients: TTFT_CLIENTS,
        rounds: TTFT_ROUNDS,
        accounts: 2,
        log,
        startGateway: async (ttftSim, ready) => {
          const child = await startChild({
            name: `gateway (ready chats ${ready})`,
            script: join(HERE, 'gateway-child.js'),
            env: { BENCH_QWEN_BASE_URL: ttftSim.url, BENCH_COOKIES: JSON.stringify(ttftSim.accounts.map((a) => a.cookie)), BENCH_READY_CHATS: String(ready) },
            log,
          })
          children.push(child) // closed by runTtft, or by the signal handler
          return child
        },
      })
    }
  } catch (err) {
    failure = (err as Error).stack ?? String(err)
  } finally {
    await cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }

  const { text, failed } = report(results, failure)
  process.stdout.write(`${text}\n`)
  if (profileDir) process.stdout.write(`${profileReport(profileDir, results.throughput, ROOT)}\n`)
  return failed ? 1 : 0
}

/** Every phase but ttft: one gateway child (and the floor child) against the instant simulator. */
async function mainPhases (sim: Simulator, env: Record<string, string>, children: Child[], results: Results, profileDir: string | undefined): Promise<void> {
  const gw = await startChild({ name: 'gateway', script: join(HERE, 'gateway-child.js'), env, log, ...(profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}) })
  children.push(gw)
  const floor = needsFloor ? await startChild({ name: 'floor', script: join(HERE, 'floor-child.js'), env, log }) : undefined
  if (floor) children.push(floor)
  log(`simulator ${sim.url}, gateway ${gw.url} (pid ${gw.proc.pid})${floor ? `, floor ${floor.url} (pid ${floor.proc.pid})` : ''}, bench pid ${process.pid}`)
  await runPhases(sim, gw, floor, results)
}

// Whatever happens, the process ends in bounded time.
const budgetMs = 1000 * (
  4 * (WARMUP + DURATION + 2) +
  2 * (2 * WARMUP + 2 * RATIO_PAIRS * (RATIO_WINDOW + 2)) +
  2 * LATENCY_CLIENTS.length * (1 + LATENCY_DURATION + 2) +
  2 * (STREAMS_OPEN_TIMEOUT_MS / 1000 + 40) +
  // ttft: per target and concurrency, rounds of ~0.5 s plus up to 20 s of refill wait each (bounded)
  (selected.has('ttft') ? 3 * TTFT_CLIENTS.reduce((n, c) => n + (TTFT_ROUNDS(c) + 1) * 3, 0) + 60 : 0) +
  120)
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
