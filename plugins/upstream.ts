import fp from 'fastify-plugin'
import { Agent, ProxyAgent, type Dispatcher } from 'undici'
import { UpstreamClient } from '../src/upstream/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The upstream client over the shared keep-alive dispatcher. */
    qwenUpstream: UpstreamClient
  }
}

/** Time given to in-flight upstream requests to finish when the app closes. */
const CLOSE_GRACE_MS = 2_000

/**
 * One shared undici Agent (or ProxyAgent when `proxyUrl` is set) for every upstream call, closed
 * with the app. An injected `dispatcher` is used as is and left open.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  let dispatcher: Dispatcher | undefined = cfg.dispatcher
  let owned = false
  if (!dispatcher) {
    const agentOptions = {
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 600_000,
      connections: 128,
      pipelining: 1,
      connect: { timeout: cfg.upstreamConnectTimeoutMs },
    }
    dispatcher = cfg.proxyUrl ? new ProxyAgent({ uri: cfg.proxyUrl, ...agentOptions }) : new Agent(agentOptions)
    owned = true
  }
  fastify.decorate('qwenUpstream', new UpstreamClient({
    baseUrl: cfg.qwenBaseUrl,
    dispatcher,
    firstByteTimeoutMs: cfg.upstreamFirstByteTimeoutMs,
    idleTimeoutMs: cfg.upstreamIdleTimeoutMs,
    maxBufferBytes: cfg.maxBufferBytes,
    now: cfg.now,
  }))
  fastify.addHook('onClose', async () => {
    if (!owned || !dispatcher) return
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, CLOSE_GRACE_MS, false) })
    const closed = await Promise.race([dispatcher.close().then(() => true), grace])
    clearTimeout(timer)
    if (!closed) await dispatcher.destroy()
  })
}, { name: 'qwen-upstream', fastify: '5.x', dependencies: ['qwen-config'] })
