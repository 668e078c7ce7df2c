/**
 * `npm run bench`, phase `redis non-stream`: the gateway's CPU per request with the shared store
 * (a second gateway child with `REDIS_URL`, one local `redis-server` without persistence), next to
 * the same load without it, and the Redis commands each request cost (from `INFO commandstats`);
 * then, apart from the CPU window, the exact client→Redis round trips per request of each kind
 * (`bench/redis-trips.ts`).
 * Skipped with a line when `redis-server` is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Simulator } from '../src/simulator/index.js'
import { startChild, type Child } from './child.js'
import { freePort } from './free-port.js'
import { gatewayLoad } from './loads.js'
import { cpuMsPerRequest } from './measure.js'
import { fmt, markdownTable } from './stats.js'
import { runThroughput, type ThroughputRow } from './throughput.js'
import { roundTripReport } from './redis-trips.js'

export interface RedisPhaseOptions {
  script: string
  env: Record<string, string>
  connections: number
  warmup: number
  duration: number
  log: (m: string) => void
}

/** Every command Redis has run so far (the sum of `calls=` in INFO commandstats). */
async function commandCount (redis: Redis): Promise<number> {
  const info = await redis.info('commandstats')
  let n = 0
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (m[1] !== 'info') n += Number(m[2])
  return n
}

async function startRedis (port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  await new Promise<void>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('spawn', () => { resolve() })
  })
  // It listens a moment after the spawn: ask until it answers (a busy machine takes longer).
  const deadline = Date.now() + 10_000
  for (;;) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch (err) {
      if (Date.now() > deadline) {
        proc.kill('SIGKILL')
        throw err
      }
      await new Promise((r) => setTimeout(r, 50))
    } finally {
      probe.disconnect()
    }
  }
  return proc
}

/** The `redis non-stream` rows for the report, given the same load's row without Redis. */
export async function runRedisPhase (sim: Simulator, without: ThroughputRow | undefined, o: RedisPhaseOptions): Promise<string[]> {
  const port = await freePort()
  let proc: ChildProcess
  try {
    proc = await startRedis(port)
  } catch (err) {
    return ['## Shared store (Redis)', '', `Skipped: redis-server could not be started (${(err as Error).message}); apt-get install redis-server.`, '']
  }
  let gw: Child | undefined
  const redis = new Redis({ port, host: '127.0.0.1' })
  try {
    gw = await startChild({ name: 'gateway+redis', script: o.script, env: { ...o.env, BENCH_REDIS_URL: `redis://127.0.0.1:${port}` }, log: o.log })
    const before = await commandCount(redis)
    const row = await runThroughput({ ...gatewayLoad(gw.url, false), name: 'gateway non-stream + Redis' }, gw, sim, o.connections, o.warmup, o.duration, o.log)
    const after = await commandCount(redis)
    // Warm-up and measured window both count requests; autocannon's total is the window's only.
    const requests = row.m.result.requests.total
    const rows = [...(without ? [[without.load.name, fmt(cpuMsPerRequest(without.m), 3), '—']] : []),
      [row.load.name, fmt(cpuMsPerRequest(row.m), 3), requests > 0 ? fmt((after - before) / requests, 1) : '—']]
    const trips = await roundTripReport(gw.url, port)
    return ['## Shared store (Redis)', '', markdownTable(['scenario', 'gateway CPU ms/req', 'Redis commands/req (commands inside scripts, warm-up and background resync included)'], rows),
      ...(row.problems.length > 0 ? ['', `Problems: ${row.problems.join('; ')}`] : []), '', ...trips]
  } finally {
    redis.disconnect()
    await gw?.close()
    proc.kill('SIGKILL')
  }
}

export const REDIS_CHILD = (here: string): string => join(here, 'gateway-child.js')
