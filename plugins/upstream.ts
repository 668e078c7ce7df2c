import fp from 'fastify-plugin'
import { Agent, ProxyAgent, type Dispatcher } from 'undici'
import { withinGrace } from '../src/grace.js'
import { UpstreamClient } from '../src/upstream/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The upstream client over the shared keep-alive dispatcher. */
    qwenUpstream: UpstreamClient
  }
}

/** Time given to in-flight upstream requests to finish when the app closes. */
const CLOSE_GRACE_MS = 2_000

async function closeDispatcher (d: Dispatcher): Promise<void> {
  if (!await withinGrace(d.close(), CLOSE_GRACE_MS)) await d.destroy()
}

/**
 * One shared undici Agent (or ProxyAgent when `proxyUrl` is set) for every upstream call, plus one
 * ProxyAgent per distinct per-identity proxy, created on first use. All are closed with the app.
 * An injected `dispatcher` is used as is and left open.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const agentOptions = {
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 600_000,
    connections: 128,
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
  fastify.decorate('qwenUpstream', new UpstreamClient({
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
    now: cfg.now,
    webVersion: cfg.upstreamWebVersion,
    bodyLimitBytes: cfg.upstreamBodyLimitBytes,
    // At debug level (DEBUG_MODE), upstream calls and frames are logged, redacted.
    logger: fastify.log,
  }))
  fastify.addHook('onClose', async () => {
    await Promise.all(owned.map(closeDispatcher))
  })
}, { name: 'qwen-upstream', fastify: '5.x', dependencies: ['qwen-config'] })
