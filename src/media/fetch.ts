/**
 * Fetching media URLs that clients send (`image_url` with an http(s) URL, …). The gateway fetches
 * them itself and never forwards them, so it must not become a way into the network it runs in:
 *
 * - only `http:` and `https:`;
 * - every connection goes through one undici Agent whose connector resolves the host name itself,
 *   refuses forbidden addresses (`address.ts`) before any socket is opened, and then connects to the
 *   very address it checked: a DNS answer that changes between check and connect (rebinding) cannot
 *   get through, and redirects are checked the same way because they connect through it too;
 * - at most `MAX_REDIRECTS` redirects, a size cap while reading, one timeout for the whole fetch;
 * - direct connections only: never through `PROXY_URL` (a proxy would resolve names where the
 *   gateway cannot check them).
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { Agent, buildConnector, request } from 'undici'
import { clip } from '../errors.js'
import { addressAllowed, forbiddenReason, hostAllowed, parseIp, type AllowList } from './address.js'

export const MAX_REDIRECTS = 3
const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Resolve a host name to all its addresses. */
export type LookupAll = (hostname: string) => Promise<ReadonlyArray<{ address: string }>>

export interface MediaFetcherOptions {
  /** Largest body accepted (`UPLOAD_MAX_BYTES`). */
  maxBytes: number
  /** Budget for the whole fetch, redirects and body included (`MEDIA_FETCH_TIMEOUT_MS`). */
  timeoutMs: number
  /** Operator exceptions (`MEDIA_FETCH_ALLOW`). */
  allow: AllowList
  /** Name resolution; `dns.lookup` with `all: true` by default (tests resolve made-up names). */
  lookup?: LookupAll
  /** Opens sockets; it is only ever given checked addresses (tests count its calls). */
  connector?: buildConnector.connector
}

export type MediaFetchFailure = 'scheme' | 'forbidden' | 'too_large' | 'timeout' | 'redirects' | 'status' | 'network'

/** A URL that was refused or could not be fetched; the message says why, for the client. */
export class MediaFetchError extends Error {
  constructor (readonly reason: MediaFetchFailure, message: string) {
    super(message)
    this.name = 'MediaFetchError'
  }
}

export interface FetchedMedia {
  bytes: Buffer
  /** The URL the bytes came from, after redirects. */
  url: string
}

const defaultLookup: LookupAll = async (hostname) => await dnsLookup(hostname, { all: true, verbatim: true })

/** The address to connect to for `host`, or a `forbidden` refusal. Every resolved address must pass. */
async function checkedAddress (host: string, allow: AllowList, lookup: LookupAll): Promise<string> {
  if (parseIp(host)) {
    const why = addressAllowed(host, allow) ? undefined : forbiddenReason(host)
    if (why) throw new MediaFetchError('forbidden', `${clip(host)} is a ${why} address`)
    return host
  }
  let addresses: ReadonlyArray<{ address: string }>
  try {
    addresses = await lookup(host)
  } catch {
    throw new MediaFetchError('network', `the host name ${clip(host)} could not be resolved`)
  }
  if (addresses.length === 0) throw new MediaFetchError('network', `the host name ${clip(host)} has no address`)
  if (!hostAllowed(host, allow)) {
    for (const { address } of addresses) {
      const why = addressAllowed(address, allow) ? undefined : forbiddenReason(address)
      if (why) throw new MediaFetchError('forbidden', `${clip(host)} resolves to a ${why} address`)
    }
  }
  return addresses[0]!.address
}

/** A connector that checks the address, then lets `base` connect to exactly that address. */
function guardedConnector (base: buildConnector.connector, allow: AllowList, lookup: LookupAll): buildConnector.connector {
  return (opts, callback) => {
    checkedAddress(opts.hostname, allow, lookup).then(
      // `host` (the name) still decides the TLS server name and the Host header.
      (address) => { base({ ...opts, hostname: address }, callback) },
      (err: Error) => { callback(err, null) },
    )
  }
}

function httpUrl (text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new MediaFetchError('scheme', 'the URL is not valid')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MediaFetchError('scheme', `only http and https URLs can be fetched, not \`${clip(url.protocol, 20)}\``)
  }
  return url
}

/** Drop a response body without reading it (destroying a body unread makes it emit an error). */
function discard (body: { on: (ev: 'error', fn: () => void) => unknown; destroy: () => unknown }): void {
  body.on('error', () => {})
  body.destroy()
}

/** The first `MediaFetchError` in an error's cause chain. */
function fetchErrorIn (err: unknown): MediaFetchError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof MediaFetchError) return e
  }
  return undefined
}

export class MediaFetcher {
  private readonly agent: Agent

  constructor (private readonly o: MediaFetcherOptions) {
    const base = o.connector ?? buildConnector({ timeout: o.timeoutMs })
    this.agent = new Agent({
      connect: guardedConnector(base, o.allow, o.lookup ?? defaultLookup),
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      keepAliveTimeout: 4_000,
    })
  }

  /**
   * The bytes behind `url`. Throws `MediaFetchError` for every refusal and failure; when `signal`
   * aborts (client gone), throws its reason.
   */
  async fetch (url: string, signal?: AbortSignal): Promise<FetchedMedia> {
    let current = httpUrl(url)
    const ctl = new AbortController()
    const timeout = new MediaFetchError('timeout', `no complete answer within ${this.o.timeoutMs} ms (MEDIA_FETCH_TIMEOUT_MS)`)
    const timer = setTimeout(() => ctl.abort(timeout), this.o.timeoutMs)
    const onAbort = (): void => ctl.abort(signal!.reason)
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
    try {
      for (let hop = 0; ; hop++) {
        const res = await request(current, {
          dispatcher: this.agent, method: 'GET', signal: ctl.signal, headers: { accept: '*/*', 'user-agent': 'qwen-gateway media fetch' },
        })
        if (REDIRECTS.has(res.statusCode)) {
          discard(res.body)
          const location = res.headers.location
          if (hop >= MAX_REDIRECTS) throw new MediaFetchError('redirects', `more than ${MAX_REDIRECTS} redirects`)
          if (typeof location !== 'string') throw new MediaFetchError('status', `a ${res.statusCode} redirect without a location`)
          current = httpUrl(new URL(location, current).href)
          continue
        }
        if (res.statusCode < 200 || res.statusCode >= 300) {
          discard(res.body)
          throw new MediaFetchError('status', `the server answered HTTP ${res.statusCode}`)
        }
        return { bytes: await this.read(res.body, Number(res.headers['content-length'])), url: current.href }
      }
    } catch (err) {
      if (ctl.signal.aborted) throw ctl.signal.reason
      const known = fetchErrorIn(err)
      if (known) throw known
      throw new MediaFetchError('network', `the URL could not be fetched (${clip(err instanceof Error ? err.message : String(err))})`)
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /** The body, refused as soon as it is known to exceed the cap (declared length or bytes read). */
  private async read (body: AsyncIterable<Buffer> & Parameters<typeof discard>[0], declared: number): Promise<Buffer> {
    const tooLarge = (): MediaFetchError => new MediaFetchError('too_large', `the file is larger than ${this.o.maxBytes} bytes (UPLOAD_MAX_BYTES)`)
    if (declared > this.o.maxBytes) {
      discard(body)
      throw tooLarge()
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of body) {
      size += chunk.length
      if (size > this.o.maxBytes) {
        discard(body)
        throw tooLarge()
      }
      chunks.push(chunk)
    }
    return Buffer.concat(chunks)
  }

  /** Drop every connection, in flight or idle (the app is closing). */
  async close (): Promise<void> {
    await this.agent.destroy()
  }
}
