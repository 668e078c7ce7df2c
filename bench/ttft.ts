/**
 * Time to first token (issue 12): from sending a streamed request to the first content delta, at the
 * client, against the simulator's `realistic` profile (chat creation 150 ms, first frame 300 ms,
 * then 20 ms per frame; no jitter, so that the added milliseconds are not drowned in it). Three
 * targets, each at 1 and at 50 concurrent clients:
 *   floor          the simulator alone: a completion in a chat created beforehand (its first frame)
 *   no ready chats the gateway with READY_CHATS_PER_IDENTITY=0: chat creation + completion
 *   ready chats    the gateway with a stock sized for the largest concurrency (per identity:
 *                  ceil(clients / accounts)); before each round, the stock is waited for
 * Layout: the clients run in a process of their own (`ttft-clients-main.ts`), the simulator alone in this
 * one, the gateway in its child; so the floor (clients → simulator) and the gateway (clients →
 * gateway → simulator) are measured the same way. The time is taken at the first content; every
 * answer is then read to its end before the next round (no cut connections: keep-alive holds, on
 * the gateway's upstream side too, as with real clients). Each request carries its own
 * `x-request-id`, which the gateway passes upstream: the simulator's log tells when its completion arrived, which
 * splits each sample into "client → simulator" and "simulator → first content at the client".
 */
import { randomUUID } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import type { Child } from './child.js'
import { epochMs, upstreamHeaders, type ClientResult } from './ttft-clients.js'
import type { TtftResult, TtftRow } from './ttft-report.js'
import { startClients, type Clients } from './ttft-spawn.js'

export { ttftReport, type TtftResult, type TtftRow } from './ttft-report.js'

export interface TtftConfig {
  clients: number[]
  /** Rounds (of `clients` concurrent requests each) per target and concurrency. */
  rounds: (clients: number) => number
  accounts: number
  startGateway: (sim: Simulator, readyChats: number) => Promise<Child>
  log: (m: string) => void
}

const MODEL = 'qwen3-max'
const LATENCY = { profile: 'realistic', jitterPct: 0 } as const
const CLIENTS_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'ttft-clients-main.js')

async function newChat (sim: Simulator, agent: Agent, token: string): Promise<string> {
  const res = await request(`${sim.url}/api/v2/chats/new`, {
    method: 'POST', headers: upstreamHeaders(token, randomUUID()), dispatcher: agent,
    body: JSON.stringify({ title: 'New Chat', models: [MODEL], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() }),
  })
  return ((await res.body.json()) as { data: { id: string } }).data.id
}

/** Ready chats upstream (created, never used) across the simulator's accounts. */
const readyUpstream = (sim: Simulator): number => sim.accounts.reduce((n, a) => n + sim.chats(a.email).filter((c) => c.turns === 0).length, 0)

async function waitFor (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return cond()
}

/** When the simulator received each completion, by `x-request-id`. */
function arrivals (sim: Simulator): Map<string, number> {
  const m = new Map<string, number>()
  for (const e of sim.log()) if (e.path === '/api/v2/chat/completions' && e.headers['x-request-id']) m.set(e.headers['x-request-id'], e.time)
  return m
}

/** `n` rounds of `row.clients` concurrent requests in the clients' process; `round(k0)` runs one, its ids from `k0`. */
async function rounds (sim: Simulator, row: SplitRow, n: number, round: (k0: number) => Promise<ClientResult[]>, before: () => Promise<void>): Promise<void> {
  for (let r = 0; r < n; r++) {
    await before()
    const got = await round(r * row.clients)
    const at = arrivals(sim)
    for (const g of got) {
      if (g.ms === undefined) {
        row.errors++
        continue
      }
      row.samples.push(g.ms)
      const arrived = at.get(g.id)
      if (arrived !== undefined) {
        row.toUpstream.push(arrived - g.sentAt)
        row.fromUpstream.push(g.sentAt + g.ms - arrived)
      }
    }
  }
}

/** A row that collects the split of each sample too. */
type SplitRow = TtftRow & Required<Pick<TtftRow, 'toUpstream' | 'fromUpstream'>>

const newRow = (target: string, clients: number): SplitRow => ({ target, clients, samples: [], errors: 0, toUpstream: [], fromUpstream: [] })

export async function runTtft (c: TtftConfig): Promise<TtftResult> {
  // A clock with sub-millisecond precision for the log's arrival times (compared with the clients' `epochMs`).
  const sim = await startSimulator({ demoAccounts: c.accounts, latency: LATENCY, now: epochMs, logLimit: 10_000 })
  const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 })
  let clientsProc: Clients | undefined
  const rows: TtftRow[] = []
  const problems: string[] = []
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 100))
  try {
    const cl = clientsProc = await startClients(CLIENTS_SCRIPT, c.log)
    // The floor, per account token.
    const tokens: string[] = []
    for (const a of sim.accounts) {
      const res = await request(`${sim.url}/api/v1/auths/`, { headers: { cookie: a.cookie }, dispatcher: agent })
      tokens.push(((await res.body.json()) as { token: string }).token)
    }
    for (const clients of c.clients) {
      const row = newRow('simulator first frame (floor)', clients)
      c.log(`ttft: floor at ${clients} clients`)
      let chats: Array<{ token: string; chatId: string }> = []
      // Each round completes in chats created just before it (not timed), one per client.
      const before = async (): Promise<void> => {
        chats = await Promise.all(Array.from({ length: clients }, async (_, i) => ({ token: tokens[i % tokens.length]!, chatId: await newChat(sim, agent, tokens[i % tokens.length]!) })))
        await pause()
      }
      const round = (tag: string) => (k0: number): Promise<ClientResult[]> =>
        cl.run({ op: 'floor', url: sim.url, model: MODEL, items: chats.map((ch, j) => ({ id: `ttft-${tag}-${clients}-${k0 + j}`, ...ch })) })
      // One warm-up round (connections for this concurrency), then the measured ones.
      await rounds(sim, row, 1, round('floor-warm'), before)
      Object.assign(row, newRow(row.target, clients))
      await rounds(sim, row, c.rounds(clients), round('floor'), before)
      rows.push(row)
    }

    const maxClients = Math.max(...c.clients)
    const perIdentity = Math.ceil(maxClients / c.accounts)
    for (const ready of [0, perIdentity]) {
      sim.reset()
      const gw = await c.startGateway(sim, ready)
      try {
        // Warm-up: the token, the model list, connections, and (with ready chats) the demand.
        const warm = await cl.run({ op: 'gateway', url: gw.url, model: MODEL, items: [{ id: `ttft-warm-${ready}`, prompt: 'Hello there' }] })
        if (warm[0]?.error !== undefined) throw new Error(`gateway warm-up: ${warm[0].error}`)
        for (const clients of c.clients) {
          const row = newRow(ready ? `gateway, ready chats (${perIdentity} per account)` : 'gateway, no ready chats', clients)
          c.log(`ttft: ${row.target} at ${clients} clients`)
          const before = async (): Promise<void> => {
            if (ready && !await waitFor(() => readyUpstream(sim) >= ready * c.accounts, 20_000)) problems.push(`${row.target} at ${clients}: the stock did not refill in 20 s`)
            await pause()
          }
          const round = (tag: string) => (k0: number): Promise<ClientResult[]> => cl.run({
            op: 'gateway', url: gw.url, model: MODEL,
            items: Array.from({ length: clients }, (_, j) => ({ id: `ttft-${tag}${ready}-${clients}-${k0 + j}`, prompt: `Hello there (${k0 + j})` })),
          })
          await rounds(sim, row, 1, round('gw-warm'), before)
          Object.assign(row, newRow(row.target, clients))
          await rounds(sim, row, c.rounds(clients), round('gw'), before)
          rows.push(row)
        }
      } finally {
        await gw.close()
      }
    }
  } finally {
    await clientsProc?.close()
    await agent.close()
    await sim.close()
  }
  for (const r of rows) if (r.errors > 0) problems.push(`${r.target} at ${r.clients} clients: ${r.errors} failed request(s)`)
  return { rows, firstFrameMs: 300, chatNewMs: 150, problems }
}
