import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import { GatewayError } from '../src/errors.js'

/** How often the event loop delay and memory are sampled. */
const SAMPLE_MS = 1_000

function overloaded (what: string): GatewayError {
  return new GatewayError(`The gateway is overloaded (${what}); retry shortly`, { status: 503, type: 'server_error', code: 'server_overloaded', headers: { 'retry-after': '5' } })
}

const TYPES: Record<string, string> = {
  eventLoopDelay: 'event loop delay above MAX_EVENT_LOOP_DELAY_MS',
  heapUsedBytes: 'heap above MAX_HEAP_USED_BYTES',
  rssBytes: 'resident memory above MAX_RSS_BYTES',
}

/**
 * Load shedding with `@fastify/under-pressure`, only when a threshold is set (all are off by
 * default): while the event loop delay, the heap or the RSS is over its limit, requests get 503
 * `server_overloaded` with `retry-after` in the OpenAI envelope; the probes (`/health`, `/ready`,
 * the routes marked `qwenDuringDrain`) still answer. under-pressure decorates the instance with
 * `memoryUsage` and `isUnderPressure`; it is registered only when it is used.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  if (cfg.maxEventLoopDelayMs === 0 && cfg.maxHeapUsedBytes === 0 && cfg.maxRssBytes === 0) return
  await fastify.register(underPressure, {
    maxEventLoopDelay: cfg.maxEventLoopDelayMs,
    maxHeapUsedBytes: cfg.maxHeapUsedBytes,
    maxRssBytes: cfg.maxRssBytes,
    sampleInterval: SAMPLE_MS,
    pressureHandler: (request, _reply, type) => {
      if (request.routeOptions.config?.qwenDuringDrain === true) return undefined
      return Promise.reject(overloaded(TYPES[type] ?? type))
    },
  })
}, { name: 'qwen-pressure', fastify: '5.x', dependencies: ['qwen-config'] })
