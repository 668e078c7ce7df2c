/**
 * The probe's upstream client, built exactly as the gateway's upstream plugin builds its own
 * (`plugins/upstream.ts`): one undici Agent, or a ProxyAgent when `proxyUrl` is set, plus a
 * ProxyAgent per account proxy; `close()` closes all of them.
 */
import { Agent, ProxyAgent, type Dispatcher } from 'undici'
import { withinGrace } from '../grace.js'
import type { ResolvedOptions } from '../options.js'
import { UpstreamClient } from '../upstream/client.js'

const CLOSE_GRACE_MS = 2_000

export interface ProbeClient {
  client: UpstreamClient
  close: () => Promise<void>
}

export function probeClient (cfg: Pick<ResolvedOptions, 'qwenBaseUrl' | 'proxyUrl' | 'upstreamConnectTimeoutMs' | 'upstreamFirstByteTimeoutMs' | 'upstreamIdleTimeoutMs' | 'maxBufferBytes'>): ProbeClient {
  const agentOptions = { keepAliveTimeout: 10_000, pipelining: 1, connect: { timeout: cfg.upstreamConnectTimeoutMs } }
  const owned: Dispatcher[] = []
  const dispatcher = cfg.proxyUrl ? new ProxyAgent({ uri: cfg.proxyUrl, ...agentOptions }) : new Agent(agentOptions)
  owned.push(dispatcher)
  const proxies = new Map<string, Dispatcher>()
  const client = new UpstreamClient({
    baseUrl: cfg.qwenBaseUrl,
    dispatcher,
    firstByteTimeoutMs: cfg.upstreamFirstByteTimeoutMs,
    idleTimeoutMs: cfg.upstreamIdleTimeoutMs,
    maxBufferBytes: cfg.maxBufferBytes,
    proxyDispatcher: (uri) => {
      let d = proxies.get(uri)
      if (!d) {
        d = new ProxyAgent({ uri, ...agentOptions })
        proxies.set(uri, d)
        owned.push(d)
      }
      return d
    },
  })
  return {
    client,
    close: async () => {
      await Promise.all(owned.map(async (d) => { if (!await withinGrace(d.close(), CLOSE_GRACE_MS)) await d.destroy() }))
    },
  }
}
