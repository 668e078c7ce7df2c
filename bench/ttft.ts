/**
 * Time to first token (issue 12): from sending a streamed request to the first content delta, at the
 * client, against the simulator's `realistic` profile (chat creation 150 ms, first frame 300 ms,
 * then 20 ms per frame; no jitter, so that the added milliseconds are not drowned in it). Three
 * targets, each at 1 and at 50 concurrent clients:
 *   floor          the simulator alone: a completion in a chat created beforehand (its first frame)
 *   no ready chats the gateway with READY_CHATS_PER_IDENTITY=0: chat creation + completion
 *   ready chats    the gateway with a stock sized for the largest concurrency (per identity:
 *                  ceil(clients / accounts)); before each round, the stock is waited for
 * Every request is cut once its first content arrived (the rest of the answer is not the point).
 */
import { randomUUID } from 'node:crypto'
import { Agent, request } from 'undici'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import type { Child } from './child.js'
import type { TtftResult, TtftRow } from './ttft-report.js'

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

/** Resolves with the ms from `t0` to the first `data:` line whose first choice has content, or rejects. */
async function firstContent (body: AsyncIterable<Buffer> & { destroy: (e?: Error) => unknown }, t0: number): Promise<number> {
  let buf = ''
  try {
    for await (const chunk of body) {
      buf += chunk.toString('utf8')
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim()
        buf = buf.slice(nl + 1)
        if (!line.startsWith('data:')) continue
        const data = line.slice(5).trim()
        if (data === '[DONE]') continue
        const c = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: unknown } }> }).choices?.[0]?.delta?.content
        if (typeof c === 'string' && c.length > 0) return performance.now() - t0
      }
    }
  } finally {
    body.destroy()
  }
  throw new Error('the stream ended without content')
}

const upstreamHeaders = (token: string): Record<string, string> => ({
  authorization: `Bearer ${token}`, 'content-type': 'application/json', source: 'web', version: '0.2.81', 'x-request-id': randomUUID(),
})

/** The floor: one completion in `chatId`, straight to the simulator. */
async function simTtft (sim: Simulator, agent: Agent, token: string, chatId: string): Promise<number> {
  const body = JSON.stringify({
    stream: true, version: '2.1', incremental_output: true, chat_id: chatId, chat_mode: 'normal', model: MODEL, parent_id: null,
    messages: [{ role: 'user', content: 'Hello there', user_action: 'chat', files: [], models: [MODEL], chat_type: 't2t', feature_config: { thinking_enabled: false, output_schema: 'phase' }, extra: {} }],
    timestamp: Math.floor(Date.now() / 1000),
  })
  const t0 = performance.now()
  const res = await request(`${sim.url}/api/v2/chat/completions?chat_id=${chatId}`, { method: 'POST', headers: upstreamHeaders(token), body, dispatcher: agent })
  if (res.statusCode !== 200) throw new Error(`simulator status ${res.statusCode}`)
  return firstContent(res.body, t0)
}

async function newChat (sim: Simulator, agent: Agent, token: string): Promise<string> {
  const res = await request(`${sim.url}/api/v2/chats/new`, {
    method: 'POST', headers: upstreamHeaders(token), dispatcher: agent,
    body: JSON.stringify({ title: 'New Chat', models: [MODEL], chat_mode: 'normal', chat_type: 't2t', timestamp: Date.now() }),
  })
  return ((await res.body.json()) as { data: { id: string } }).data.id
}

async function gatewayTtft (gw: Child, agent: Agent, i: number): Promise<number> {
  const body = JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Hello there (${i})` }] })
  const t0 = performance.now()
  const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: agent })
  if (res.statusCode !== 200) {
    await res.body.text()
    throw new Error(`gateway status ${res.statusCode}`)
  }
  return firstContent(res.body, t0)
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

/** `n` rounds of `row.clients` concurrent requests; `one(j, k)` gets its index in the round and overall. */
async function rounds (row: TtftRow, n: number, one: (j: number, k: number) => Promise<number>, before: () => Promise<void>): Promise<void> {
  let k = 0
  for (let r = 0; r < n; r++) {
    await before()
    const got = await Promise.allSettled(Array.from({ length: row.clients }, (_, j) => one(j, k++)))
    for (const g of got) {
      if (g.status === 'fulfilled') row.samples.push(g.value)
      else row.errors++
    }
  }
}

export async function runTtft (c: TtftConfig): Promise<TtftResult> {
  const sim = await startSimulator({ demoAccounts: c.accounts, latency: LATENCY })
  const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 })
  const rows: TtftRow[] = []
  const problems: string[] = []
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 100))
  try {
    // The floor, per account token.
    const tokens: string[] = []
    for (const a of sim.accounts) {
      const res = await request(`${sim.url}/api/v1/auths/`, { headers: { cookie: a.cookie }, dispatcher: agent })
      tokens.push(((await res.body.json()) as { token: string }).token)
    }
    for (const clients of c.clients) {
      const row: TtftRow = { target: 'simulator first frame (floor)', clients, samples: [], errors: 0 }
      c.log(`ttft: floor at ${clients} clients`)
      let chats: Array<{ token: string; chatId: string }> = []
      // Each round completes in chats created just before it (not timed), one per client.
      const before = async (): Promise<void> => {
        chats = await Promise.all(Array.from({ length: clients }, async (_, i) => ({ token: tokens[i % tokens.length]!, chatId: await newChat(sim, agent, tokens[i % tokens.length]!) })))
        await pause()
      }
      const one = (j: number): Promise<number> => simTtft(sim, agent, chats[j]!.token, chats[j]!.chatId)
      await rounds(row, 1, one, before)
      row.samples = []
      row.errors = 0
      await rounds(row, c.rounds(clients), one, before)
      rows.push(row)
    }

    const maxClients = Math.max(...c.clients)
    const perIdentity = Math.ceil(maxClients / c.accounts)
    for (const ready of [0, perIdentity]) {
      sim.reset()
      const gw = await c.startGateway(sim, ready)
      try {
        // Warm-up: the token, the model list, connections, and (with ready chats) the demand.
        await gatewayTtft(gw, agent, -1)
        for (const clients of c.clients) {
          const row: TtftRow = { target: ready ? `gateway, ready chats (${perIdentity} per account)` : 'gateway, no ready chats', clients, samples: [], errors: 0 }
          c.log(`ttft: ${row.target} at ${clients} clients`)
          const before = async (): Promise<void> => {
            if (ready && !await waitFor(() => readyUpstream(sim) >= ready * c.accounts, 20_000)) problems.push(`${row.target} at ${clients}: the stock did not refill in 20 s`)
            await pause()
          }
          // One warm-up round (connections for this concurrency), then the measured ones.
          await rounds(row, 1, (_, k) => gatewayTtft(gw, agent, k), before)
          row.samples = []
          row.errors = 0
          await rounds(row, c.rounds(clients), (_, k) => gatewayTtft(gw, agent, k), before)
          rows.push(row)
        }
      } finally {
        await gw.close()
      }
    }
  } finally {
    await agent.close()
    await sim.close()
  }
  for (const r of rows) if (r.errors > 0) problems.push(`${r.target} at ${r.clients} clients: ${r.errors} failed request(s)`)
  return { rows, firstFrameMs: 300, chatNewMs: 150, problems }
}
