/**
 * `bench/redis.ts`'s round-trip table: client→Redis round trips per request, counted on the server
 * (`MONITOR`, `bench/round-trips.ts`) over a sample of sequential requests of each kind, after the
 * CPU measurement (MONITOR costs Redis CPU, so it never runs during it). Background traffic (resync,
 * probe, pub/sub, sweeps) is left out and counted apart; the request log's batched writes are shown
 * per request of a concurrent burst, where batching pays off.
 */
import { Redis } from 'ioredis'
import { withScripts } from '../src/store/redis/scripts.js'
import { RoundTripCounter, scriptNames } from './round-trips.js'
import { fmt, markdownTable } from './stats.js'

const JSON_HEADERS = { 'content-type': 'application/json' }

async function post (url: string, body: object): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ model: 'qwen3-max', ...body }) })
  const json = await res.json() as Record<string, unknown>
  if (res.status !== 200) throw new Error(`round-trip sample: ${res.status} ${JSON.stringify(json).slice(0, 300)}`)
  return json
}

async function chat (base: string, messages: unknown[]): Promise<string> {
  const r = await post(`${base}/v1/chat/completions`, { messages }) as { choices: Array<{ message: { content: string } }> }
  return r.choices[0]!.message.content
}

async function respond (base: string, body: object): Promise<string> {
  return (await post(`${base}/v1/responses`, body) as { id: string }).id
}

/** Lets the writes that follow a response (and one request-log batch) land in the window. */
const settle = async (): Promise<void> => { await new Promise((r) => setTimeout(r, 400)) }

interface Sample { name: string; perRequest: number; what: Record<string, number> }

async function sample (counter: RoundTripCounter, name: string, n: number, before: (k: number) => Promise<unknown>, run: (k: number, prep: unknown) => Promise<unknown>): Promise<Sample> {
  const preps: unknown[] = []
  for (let k = 0; k < n; k++) preps.push(await before(k))
  await settle()
  counter.reset()
  for (let k = 0; k < n; k++) await run(k, preps[k])
  await settle()
  const what = counter.breakdown()
  for (const w of Object.keys(what)) what[w] = what[w]! / n
  return { name, perRequest: counter.count('request') / n, what }
}

/** The markdown rows: one per kind of request, and the request log's share under concurrency. */
export async function roundTripReport (base: string, port: number, n = 20, burst = 200, concurrency = 16): Promise<string[]> {
  const names = new Redis({ port, host: '127.0.0.1', lazyConnect: true })
  const counter = await RoundTripCounter.start(port, scriptNames(withScripts(names).redis))
  try {
    // Warm-up: every script loaded (a first EVALSHA on an empty script cache costs a second trip).
    await chat(base, [{ role: 'user', content: 'w' }, { role: 'assistant', content: await chat(base, [{ role: 'user', content: 'w' }]) }, { role: 'user', content: 'w2' }])
    await respond(base, { input: 'w2', previous_response_id: await respond(base, { input: 'w' }) })
    const rows: Sample[] = []
    rows.push(await sample(counter, 'one-shot chat completion', n, async () => undefined, async (k) => await chat(base, [{ role: 'user', content: `one-shot ${k}` }])))
    rows.push(await sample(counter, 'conversation, turn 2 (history resent)', n,
      async (k) => { const q = [{ role: 'user', content: `conversation ${k}` }]; return [...q, { role: 'assistant', content: await chat(base, q) }, { role: 'user', content: 'and then?' }] },
      async (_k, messages) => await chat(base, messages as unknown[])))
    rows.push(await sample(counter, 'Responses turn 2 (previous_response_id)', n,
      async (k) => await respond(base, { input: `responses ${k}` }),
      async (_k, id) => await respond(base, { input: 'go on', previous_response_id: id })))
    const background = counter.count('background')

    // The request log under concurrency: batches per request.
    counter.reset()
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < burst) await chat(base, [{ role: 'user', content: `burst ${next++}` }])
    }))
    await settle()
    const batches = counter.count('request-log')
    const burstTrips = counter.count('request') / burst

    const table = markdownTable(['request (sequential, n = ' + String(n) + ')', 'Redis round trips/req', 'which (per request)'],
      rows.map((r) => [r.name, fmt(r.perRequest, 2), Object.entries(r.what).map(([w, c]) => `${w} ${fmt(c, 2)}`).join(', ')]))
    return ['### Redis round trips per request (counted with MONITOR)', '', table, '',
      `One-shot requests, ${String(burst)} at concurrency ${String(concurrency)}: ${fmt(burstTrips, 2)} round trips/req on the request path, ` +
      `plus ${String(batches)} batched request-log writes in all (${fmt(batches / burst, 3)}/req). ` +
      `Background (resync, probes, pub/sub, sweeps) during the sequential samples: ${String(background)} round trips, not counted above.`, '']
  } finally {
    counter.stop()
    names.disconnect()
  }
}
