/**
 * Memory with many concurrent open streams against a slow upstream: the simulator holds every
 * completion open (scenario `hang`: every frame but the last, then nothing until the client goes),
 * the child relays what it got, and the clients keep the streams open. Measured on the child:
 * RSS after a full GC before, and with all streams open; then every stream is aborted and the
 * child's open sockets must fall back to where they were (no leaked sockets).
 */
import { Agent } from 'undici'
import type { Simulator } from '../src/simulator/index.js'
import type { Child, ChildReply } from './child.js'
import { chatBody } from './loads.js'
import { sleep } from './measure.js'
import { fmt, growthPerStreamKiB, markdownTable, ratio } from './stats.js'

export interface StreamsConfig {
  streams: number
  /** Longest wait for every stream to deliver its first chunk, ms. */
  openTimeoutMs: number
  /** Streams being opened at a time (the listen backlog is finite). */
  openBatch: number
}

export interface StreamsResult {
  name: string
  target: number
  /** Streams that answered 200 and delivered a first chunk. */
  opened: number
  openMs: number
  baseline: ChildReply
  /** With the first half of the streams open. */
  mid: ChildReply
  openedAtHalf: number
  open: ChildReply
  after: ChildReply
  /** RSS growth per stream from no stream to all open, KiB. */
  growthKiB: number
  /**
   * RSS growth per stream from half to all open, KiB: the marginal cost once heap space the process
   * had reserved before (after earlier load) is used up.
   */
  marginalKiB: number
  /** Heap growth per stream from no stream to all open, KiB. */
  heapKiB: number
  /** Problems (streams not opened, failed, sockets left), described; empty: none. */
  problems: string[]
}

/** Poll the child until its open sockets are at most `max`, or `ms` passed. */
async function socketsDown (child: Child, max: number, ms: number): Promise<ChildReply> {
  const end = Date.now() + ms
  for (;;) {
    const s = await child.snapshot()
    if (s.sockets <= max || Date.now() > end) return s
    await sleep(200)
  }
}

export async function holdStreams (child: Child, sim: Simulator, cfg: StreamsConfig, log: (m: string) => void): Promise<StreamsResult> {
  sim.reset()
  for (const a of sim.accounts) sim.queue(a.email, ...Array.from({ length: cfg.streams }, () => ({ hang: true })))
  await sleep(500)
  const baseline = await child.snapshotAfterGc()
  log(`${child.name}: opening ${cfg.streams} streams (baseline RSS ${(baseline.memory.rss / 2 ** 20).toFixed(1)} MiB, ${baseline.sockets} sockets)`)

  const agent = new Agent({ pipelining: 1, keepAliveTimeout: 1_000, connect: { timeout: 10_000 } })
  const controllers: AbortController[] = []
  const failures = new Map<string, number>()
  const fail = (why: string): void => { failures.set(why, (failures.get(why) ?? 0) + 1) }
  let opened = 0
  let aborting = false
  const t0 = Date.now()

  /** One stream: resolves when it delivered its first chunk (or failed); stays open afterwards. */
  const openOne = (): Promise<void> => new Promise<void>((resolve) => {
    const ac = new AbortController()
    controllers.push(ac)
    const done = (): void => resolve()
    agent.request({
      origin: child.url, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' },
      body: chatBody(true), signal: ac.signal, headersTimeout: cfg.openTimeoutMs, bodyTimeout: 0,
    }).then((res) => {
      if (res.statusCode !== 200) {
        fail(`HTTP ${res.statusCode}`)
        res.body.resume()
        return done()
      }
      res.body.on('error', (err) => { if (!aborting) fail(`stream failed: ${err.message}`) })
      res.body.on('data', function first (chunk: Buffer) {
        if (chunk.length === 0) return
        res.body.off('data', first)
        res.body.resume() // keep reading (keep-alive comments) until aborted
        opened++
        done()
      })
      res.body.on('end', () => { if (!aborting) fail('stream ended while it should stay open') })
    }, (err: unknown) => {
      if (!aborting) fail((err as Error).message)
      done()
    })
  })

  // At most `openBatch` streams waiting for their first chunk at any time.
  const deadline = t0 + cfg.openTimeoutMs
  const openUpTo = async (count: number): Promise<void> => {
    const inFlight = new Set<Promise<void>>()
    while (controllers.length < count && Date.now() < deadline) {
      const p = openOne().finally(() => inFlight.delete(p))
      inFlight.add(p)
      if (inFlight.size >= cfg.openBatch) await Promise.race(inFlight)
    }
    await Promise.race([Promise.all(inFlight), sleep(Math.max(0, deadline - Date.now()))])
    await sleep(1_000)
  }
  const half = Math.floor(cfg.streams / 2)
  await openUpTo(half)
  const openedAtHalf = opened
  const mid = await child.snapshotAfterGc()
  await openUpTo(cfg.streams)
  const openMs = Date.now() - t0 - 2_000
  log(`${child.name}: ${opened}/${cfg.streams} streams open (${openedAtHalf} at the half-way snapshot), ${openMs} ms spent opening`)
  const open = await child.snapshotAfterGc()

  aborting = true
  for (const ac of controllers) ac.abort()
  const after = await socketsDown(child, baseline.sockets, 15_000)
  await agent.destroy()
  sim.reset()

  const found: string[] = []
  if (opened < cfg.streams) found.push(`${cfg.streams - opened} of ${cfg.streams} streams never delivered a first chunk`)
  for (const [why, n] of failures) found.push(`${n}× ${why}`)
  if (open.sockets < 2 * opened) found.push(`only ${open.sockets} sockets open in the child with ${opened} streams (expected ≥ ${2 * opened}: client + upstream per stream)`)
  if (after.sockets > baseline.sockets) found.push(`${after.sockets - baseline.sockets} sockets still open in the child 15 s after the streams were aborted`)
  return {
    name: child.name,
    target: cfg.streams,
    opened,
    openMs,
    baseline,
    mid,
    openedAtHalf,
    open,
    after,
    growthKiB: growthPerStreamKiB(baseline.memory.rss, open.memory.rss, opened),
    marginalKiB: growthPerStreamKiB(mid.memory.rss, open.memory.rss, opened - openedAtHalf),
    heapKiB: growthPerStreamKiB(baseline.memory.heapUsed, open.memory.heapUsed, opened),
    problems: found,
  }
}

export function streamsTable (rows: StreamsResult[]): string {
  const mib = (b: number): string => fmt(b / 2 ** 20, 1)
  return markdownTable(
    ['process', 'streams open', 'time to open ms', 'RSS before / half / all open / after MiB', 'RSS growth KiB/stream', 'half→all KiB/stream', 'heap before / open MiB', 'heap KiB/stream', 'sockets before / open / after'],
    rows.map((r) => [
      `${r.name}${r.problems.length > 0 ? ' !! ERRORS' : ''}`,
      `${r.opened}/${r.target}`,
      String(r.openMs),
      [r.baseline, r.mid, r.open, r.after].map((x) => mib(x.memory.rss)).join(' / '),
      fmt(r.growthKiB, 1),
      fmt(r.marginalKiB, 1),
      `${mib(r.baseline.memory.heapUsed)} / ${mib(r.open.memory.heapUsed)}`,
      fmt(r.heapKiB, 1),
      `${r.baseline.sockets} / ${r.open.sockets} / ${r.after.sockets}`,
    ]),
  )
}

/** A growth per stream of the gateway over the floor's. */
export function growthRatio (rows: StreamsResult[], which: 'growthKiB' | 'marginalKiB' | 'heapKiB'): number {
  const g = rows.find((r) => r.name === 'gateway')
  const f = rows.find((r) => r.name === 'floor')
  return g && f ? ratio(g[which], f[which]) : NaN
}
