/**
 * Where the shared store's Redis is (for the standalone server, which reads the environment) and
 * the client we create for it: never blocks start-up (`lazyConnect`, no offline queue, a short
 * command timeout, reconnects capped at 2 s).
 */
import { Redis } from 'ioredis'

/**
 * The Redis URL from the environment, first found wins: `REDIS_URL`, `REDIS_URI`,
 * `REDIS_CONNECTION_STRING` (Zeabur), then `REDIS_HOST` + `REDIS_PORT` + `REDIS_PASSWORD`.
 */
export function redisUrlFromEnv (env: Record<string, string | undefined>): string | undefined {
  for (const k of ['REDIS_URL', 'REDIS_URI', 'REDIS_CONNECTION_STRING']) {
    const v = env[k]?.trim()
    if (v) return v
  }
  const host = env.REDIS_HOST?.trim()
  if (!host) return undefined
  const password = env.REDIS_PASSWORD ? `:${encodeURIComponent(env.REDIS_PASSWORD)}@` : ''
  return `redis://${password}${host}:${env.REDIS_PORT?.trim() || '6379'}`
}

export function createRedis (url: string, replicaId: string, commandTimeoutMs: number): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 500,
    commandTimeout: commandTimeoutMs,
    retryStrategy: (n: number) => Math.min(100 * 2 ** n, 2000),
    connectionName: `qwen-gateway:${replicaId}`.replace(/[^\w:.-]/g, '_'),
  })
  // Errors surface through the commands (and the breaker); the event only keeps Node from crashing.
  redis.on('error', () => {})
  return redis
}

/** `REDIS_REQUIRED`: Redis did not answer at start-up (the standalone server exits with code 1). */
export class StoreUnavailableError extends Error {
  constructor (waitedMs: number, lastError: string | undefined) {
    super(`REDIS_REQUIRED is set and Redis did not answer within ${waitedMs} ms${lastError ? ` (${lastError})` : ''}: not starting`)
    this.name = 'StoreUnavailableError'
  }
}
