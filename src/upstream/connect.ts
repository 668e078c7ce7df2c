/**
 * The upstream client and the dispatchers it runs over, built one way for the gateway's upstream
 * plugin and for the live probe: one undici Agent (or a ProxyAgent when `proxyUrl` is set) for
 * every call, one ProxyAgent per distinct per-identity proxy created on first use, and `close()`
 * for all of them. An injected `dispatcher` is used as is and left open.
 */
import { Agent, ProxyAgent, type Dispatcher } from 'undici'
import { withinGrace } from '../grace.js'
import type { ResolvedOptions } from '../options.js'
import { UpstreamClient, type UpstreamLogger } from './client.js'
import { UpstreamSlots } from './slots.js'

/** Time given to in-flight upstream requests to finish when closing. */
const CLOSE_GRACE_MS = 2_000

export type UpstreamSettings = Pick<ResolvedOptions,
  'qwenBaseUrl' | 'proxyUrl' | 'dispatcher' | 'upstreamConnectTimeoutMs' | 'upstreamFirstByteTimeoutMs' |
  'upstreamIdleTimeoutMs' | 'maxBufferBytes' | 'upstreamWebVersion' | 'upstreamBodyLimitBytes' |
  'upstreamMaxConnections' | 'upstreamQueueTimeoutMs'> & Partial<Pick<ResolvedOptions, 'now'>>

export interface UpstreamConnection {
  client: UpstreamClient
  /** Close every dispatcher this created (an injected one is left open). */
  close: () => Promise<void>
}

async function closeDispatcher (d: Dispatcher): Promise<void> {
  if (!await withinGrace(d.close(), CLOSE_GRACE_MS)) await d.destroy()
}

export function connectUpstream (cfg: UpstreamSettings, logger?: UpstreamLogger): UpstreamConnection {
  const agentOptions = {
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 600_000,
    connections: cfg.upstreamMaxConnections,
    pipelining: 1,
    connect: { timeout: cfg.upstreamConnectTimeoutMs },
  }
  const owned: Dispatcher[] = []
  let dispatcher = cfg.dispatcher
  if (!dispatcher) {
    dispatcher = cfg.proxyUrl ? new ProxyAgent({ uri: cfg.proxyUrl, ...agentOptions }) : new Agent(agentOptions)
    owned.push(dispatcher)
  }
  const proxies = new Map<string, Dispatcher>()
  const client = new UpstreamClient({
    baseUrl: cfg.qwenBaseUrl,
    dispatcher,
    firstByteTimeoutMs: cfg.upstreamFirstByteTimeoutMs,
    idleTimeoutMs: cfg.upstreamIdleTimeoutMs,
    maxBufferBytes: cfg.maxBufferBytes,
    slots: new UpstreamSlots(cfg.upstreamMaxConnections, cfg.upstreamQueueTimeoutMs),
    proxyDispatcher: (uri) => {
      let d = proxies.get(uri)
      if (!d) {
        d = new ProxyAgent({ uri, ...agentOptions })
        proxies.set(uri, d)
        owned.push(d)
      }
      return d
    },
    ...(cfg.now ? { now: cfg.now } : {}),
    webVersion: cfg.upstreamWebVersion,
    bodyLimitBytes: cfg.upstreamBodyLimitBytes,
    ...(logger ? { logger } : {}),
  })
  return { client, close: async () => { await Promise.all(owned.map(closeDispatcher)) } }
}
