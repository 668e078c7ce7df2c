/**
 * The TTFT phase's clients, run in a process of their own (`ttft-clients-main.ts`, which
 * `bench/ttft.ts` spawns): so that the floor (clients → simulator) and the gateway (clients →
 * gateway → simulator) are measured the same way, with the simulator alone in the bench process and
 * the clients' own work (sending 50 requests, parsing 50 first chunks) on neither the simulator's
 * nor the gateway's event loop. Every answer is read to its end (see `settle`).
 *
 * Commands come over IPC (`ClientsCommand`), one round at a time: every request of the round is
 * sent at once; the answer (`ClientsReply`) gives per request the time to its first content delta
 * (or the error) and when it was sent (epoch ms, to line it up with the simulator's log).
 */
import { request, type Agent } from 'undici'

export type ClientsCommand =
  | { op: 'floor'; url: string; model: string; items: Array<{ id: string; token: string; chatId: string }> }
  | { op: 'gateway'; url: string; model: string; items: Array<{ id: string; prompt: string }> }
  | { op: 'close' }

export interface ClientResult { id: string; sentAt: number; ms?: number; error?: string }
export interface ClientsReply { results: ClientResult[]; fatal?: string }

/** Epoch ms with sub-millisecond precision (the same clock as the bench's simulator log). */
export const epochMs = (): number => performance.timeOrigin + performance.now()

type Body = AsyncIterable<Buffer> & { destroy: (e?: Error) => unknown }

/**
 * Resolves with the ms from `t0` to the first `data:` line whose first choice has content, or
 * rejects (the body is then destroyed). On success `rest` reads the remainder of the answer
 * (unparsed) and resolves when the stream ends.
 */
async function firstContent (body: Body, t0: number): Promise<{ ms: number; rest: Promise<void> }> {
  let buf = ''
  // Not `for await` (leaving it would destroy the body): the same iterator reads the rest.
  const it = body[Symbol.asyncIterator]()
  const drain = async (): Promise<void> => {
    try {
      while ((await it.next()).done !== true);
    } catch {
      body.destroy()
    }
  }
  try {
    for (let r = await it.next(); r.done !== true; r = await it.next()) {
      buf += r.value.toString('utf8')
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim()
        buf = buf.slice(nl + 1)
        if (!line.startsWith('data:')) continue
        const data = line.slice(5).trim()
        if (data === '[DONE]') continue
        const c = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: unknown } }> }).choices?.[0]?.delta?.content
        if (typeof c === 'string' && c.length > 0) return { ms: performance.now() - t0, rest: drain() }
      }
    }
  } catch (err) {
    body.destroy()
    throw err
  }
  throw new Error('the stream ended without content')
}

/** The headers the simulator checks on a completion (PROTOCOL-2026 §7). */
export const upstreamHeaders = (token: string, id: string): Record<string, string> => ({
  authorization: `Bearer ${token}`, 'content-type': 'application/json', source: 'web', version: '0.2.81', 'x-request-id': id,
})

interface Started { id: string; sentAt: number; done: Promise<{ ms: number; rest: Promise<void> }> }

/** Send one request now; `done` resolves at its first content. */
function start (id: string, what: string, send: () => Promise<{ statusCode: number; body: Body & { text: () => Promise<string> } }>): Started {
  const sentAt = epochMs()
  const t0 = performance.now()
  const done = send().then(async (r) => {
    if (r.statusCode !== 200) {
      await r.body.text()
      throw new Error(`${what} status ${r.statusCode}`)
    }
    return await firstContent(r.body, t0)
  })
  done.catch(() => undefined) // settled in order below; never unhandled meanwhile
  return { id, sentAt, done }
}

/**
 * Every request's result, once every answer of the round has been read to its end: streams are not
 * cut at the first content, so that every connection (the client's, and the gateway's upstream one)
 * stays alive for the next round and no request's teardown runs while others still wait for their
 * first content, as with real clients, which read their answers.
 */
async function settle (started: Started[]): Promise<ClientResult[]> {
  const out: ClientResult[] = []
  const rests: Array<Promise<void>> = []
  for (const s of started) {
    try {
      const { ms, rest } = await s.done
      out.push({ id: s.id, sentAt: s.sentAt, ms })
      rests.push(rest)
    } catch (err) {
      out.push({ id: s.id, sentAt: s.sentAt, error: (err as Error).message })
    }
  }
  await Promise.all(rests)
  return out
}

/** One round: every request of `cmd` sent at once (in one turn of the event loop). */
export async function runRound (agent: Agent, cmd: Exclude<ClientsCommand, { op: 'close' }>): Promise<ClientResult[]> {
  if (cmd.op === 'floor') {
    // The floor: one completion per chat (created beforehand by the bench), straight to the simulator.
    return settle(cmd.items.map((it) => {
      const body = JSON.stringify({
        stream: true, version: '2.1', incremental_output: true, chat_id: it.chatId, chat_mode: 'normal', model: cmd.model, parent_id: null,
        messages: [{ role: 'user', content: 'Hello there', user_action: 'chat', files: [], models: [cmd.model], chat_type: 't2t', feature_config: { thinking_enabled: false, output_schema: 'phase' }, extra: {} }],
        timestamp: Math.floor(Date.now() / 1000),
      })
      return start(it.id, 'simulator', () => request(`${cmd.url}/api/v2/chat/completions?chat_id=${it.chatId}`, { method: 'POST', headers: upstreamHeaders(it.token, it.id), body, dispatcher: agent }))
    }))
  }
  return settle(cmd.items.map((it) => {
    const body = JSON.stringify({ model: cmd.model, stream: true, messages: [{ role: 'user', content: it.prompt }] })
    return start(it.id, 'gateway', () => request(`${cmd.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': it.id }, body, dispatcher: agent }))
  }))
}
