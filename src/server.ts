/**
 * Standalone entry point (`npm start`): configuration from the environment, `.env`, `config.json`
 * and `cookie.txt`; listen; close gracefully on SIGINT/SIGTERM. The only module besides the demo
 * and simulator entry points that touches `process`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { chmod, copyFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseEnv } from 'node:util'
import { buildServer } from './build.js'
import { ConfigError, loadConfig } from './config.js'
import { DEFAULTS, OptionsError, type TokenRefreshedEvent } from './options.js'
import { JsonStateFile } from './state.js'
import { redisUrlFromEnv, StoreUnavailableError } from './store/redis/connection.js'

/** Read a file relative to the working directory, or undefined when it does not exist. */
export function readRelative (path: string): string | undefined {
  const p = resolve(process.cwd(), path)
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined
}

/** The process environment over `.env` (the environment wins). */
export function environment (): Record<string, string | undefined> {
  const dotenv = readRelative('.env')
  return { ...(dotenv ? parseEnv(dotenv) : {}), ...process.env }
}

/**
 * The original project's single-cookie behaviour: after a token refresh, when config.json is in
 * use, keep a backup of it (`config.json.backup`, one, overwritten) and write the new QWEN_TOKEN into
 * it. The rewritten file and the backup keep the file's mode (a 0600 file holds secrets). Timestamped
 * backups (`config.json.backup.<ms>`) left by earlier versions hold old tokens and are removed.
 * (The second parameter is ignored; it was the clock for those timestamps.)
 */
export function configTokenWriter (path: string): (e: TokenRefreshedEvent) => Promise<void> {
  return async (e) => {
    if (!e.singleCookie || !existsSync(path)) return
    const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
    if (config.QWEN_TOKEN === e.token) return
    const mode = (await stat(path)).mode & 0o7777
    const backup = `${path}.backup`
    await copyFile(path, backup)
    await chmod(backup, mode)
    config.QWEN_TOKEN = e.token
    const tmp = `${path}.tmp`
    // A fresh file (never a stale one with a wider mode), created with the mode and set to it exactly.
    await rm(tmp, { force: true })
    await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode })
    await chmod(tmp, mode)
    await rename(tmp, path)
    const dir = dirname(path)
    const stalePrefix = `${basename(path)}.backup.`
    for (const name of await readdir(dir)) {
      if (name.startsWith(stalePrefix) && /^\d+$/.test(name.slice(stalePrefix.length))) await rm(join(dir, name), { force: true })
    }
  }
}

/** Time given to flushing state (pool state, pending deletions) after the drain. */
export const FLUSH_MS = 5_000

/**
 * Close on the first signal (the app drains for up to `SHUTDOWN_GRACE_MS`, then flushes its state);
 * exit hard on the second signal, or when drain and flush together overrun `limitMs`.
 */
export function closeOnSignals (close: () => Promise<void>, log: { info: (m: string) => void; error: (o: object, m: string) => void }, limitMs = 10_000): void {
  let closing = false
  const handler = (signal: string): void => {
    if (closing) process.exit(1)
    closing = true
    log.info(`${signal} received, closing`)
    const timer = setTimeout(() => process.exit(1), limitMs)
    timer.unref()
    close().then(() => process.exit(0), (err: unknown) => { log.error({ err }, 'close failed'); process.exit(1) })
  }
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
}

async function main (): Promise<void> {
  const env = environment()
  // Zeabur and others name the Redis address differently: the first one found is REDIS_URL.
  const redisUrl = redisUrlFromEnv(env)
  const loaded = loadConfig({ env: { ...env, ...(redisUrl ? { REDIS_URL: redisUrl } : {}) }, readFile: readRelative })
  // With a shared store the pool state lives in Redis: a state file only when asked for explicitly.
  const stateFile = redisUrl && !env.STATE_FILE ? undefined : loaded.stateFile
  const app = await buildServer({
    ...loaded.options,
    replicaId: loaded.options.replicaId ?? `${hostname()}-${process.pid}`,
    ...(stateFile ? { stateFile: new JsonStateFile(resolve(process.cwd(), stateFile)) } : {}),
    onTokenRefreshed: configTokenWriter(resolve(process.cwd(), 'config.json')),
  }, { logger: { level: loaded.server.logLevel } })
  app.log.info({
    cookies: loaded.options.cookies?.length ?? 0,
    accounts: loaded.options.accounts?.length ?? 0,
    cookieSource: loaded.cookieSource,
    configFile: loaded.configFile,
    stateFile: stateFile ?? null,
    store: redisUrl ? 'redis' : 'memory',
    tokensPersisted: loaded.options.stateSecret !== undefined,
    upstream: loaded.options.qwenBaseUrl ?? DEFAULTS.qwenBaseUrl,
  }, 'configuration loaded')
  // Kubernetes sends SIGKILL 30 s after SIGTERM by default: grace (20 s) + flush (5 s) stays inside it.
  closeOnSignals(() => app.close(), app.log, app.qwenConfig.shutdownGraceMs + FLUSH_MS)
  await app.listen({ port: loaded.server.port, host: loaded.server.host })
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href
if (isMain) {
  main().catch((err: unknown) => {
    // A bad configuration value (one line naming the key), or REDIS_REQUIRED without Redis: no stack.
    if (err instanceof ConfigError || err instanceof OptionsError || err instanceof StoreUnavailableError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    }
    process.stderr.write(`qwen-gateway failed to start: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
