/** A simulator plus a gateway wired to it over real sockets, both closed at teardown. */
import type { FastifyInstance } from 'fastify'
import { buildServer, type GatewayOptions } from '../../src/index.js'
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js'

export interface Harness {
  sim: Simulator
  app: FastifyInstance
  /** The gateway's base URL, e.g. http://127.0.0.1:41234 */
  url: string
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function startSim (t: Teardown, opts: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator(opts)
  t.teardown(() => sim.close())
  return sim
}

export async function harness (t: Teardown, o: { sim?: SimulatorOptions; gateway?: GatewayOptions; simulator?: Simulator } = {}): Promise<Harness> {
  const sim = o.simulator ?? await startSim(t, o.sim)
  const app = await buildServer({
    qwenBaseUrl: sim.url,
    cookies: sim.accounts.map((a) => a.cookie),
    // No ready chats unless a test is about them: exact upstream-log assertions stay exact.
    readyChatsPerIdentity: 0,
    ...o.gateway,
  }, { logger: false })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return { sim, app, url: `http://127.0.0.1:${port}` }
}

export async function postJson (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

/** Parse an SSE body into its `data:` payloads (comments dropped). */
export function sseData (text: string): string[] {
  return text.split('\n\n').filter((b) => b.length > 0).flatMap((block) => {
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
    return data.length ? [data.join('\n')] : []
  })
}
