/**
 * The gateway under benchmark, alone in its own process so that its CPU time and memory can be
 * measured apart from the load generator and the simulator (see `bench/run.ts`).
 *
 * Input: env `BENCH_QWEN_BASE_URL` (the simulator) and `BENCH_COOKIES` (a JSON array of cookies);
 * `BENCH_READY_CHATS`: ready chats per account (default 0, so that the CPU phases measure the
 * request path alone, as before ready chats existed; the TTFT phase sets it).
 * The gateway logs as in production (level info: one access-log line per completion) into /dev/null;
 * `BENCH_LOG=0` turns logging off. `BENCH_CHAT_DELETION` (`off`, `after_use`, `scheduled`; default the
 * product's, `after_use`): each completion's chat is deleted upstream once no conversation can go on
 * in it, one more upstream request per completion.
 * Output: one JSON line on stdout once listening and the identity pool is ready:
 *   {"port": <number>}
 * Then it answers the commands of `child-control.ts` (cpu, gc, close).
 */
import { createWriteStream } from 'node:fs'
import { buildServer } from '../src/build.js'
import { fail, serveCommands } from './child-control.js'

const WHO = 'gateway-child'

async function main (): Promise<void> {
  const qwenBaseUrl = process.env.BENCH_QWEN_BASE_URL
  if (!qwenBaseUrl) fail(WHO, 'BENCH_QWEN_BASE_URL is not set')
  let cookies: unknown
  try {
    cookies = JSON.parse(process.env.BENCH_COOKIES ?? '[]')
  } catch {
    fail(WHO, 'BENCH_COOKIES is not JSON')
  }
  if (!Array.isArray(cookies) || !cookies.every((c) => typeof c === 'string')) fail(WHO, 'BENCH_COOKIES must be a JSON array of strings')

  const logger = process.env.BENCH_LOG === '0'
    ? false
    : { level: 'info', stream: createWriteStream('/dev/null') }
  // `bench/redis.ts`: the same gateway with the shared store; `bench/ttft.ts`: with ready chats.
  const redisUrl = process.env.BENCH_REDIS_URL
  const readyChatsPerIdentity = Number(process.env.BENCH_READY_CHATS ?? '0')
  if (!Number.isInteger(readyChatsPerIdentity) || readyChatsPerIdentity < 0) fail(WHO, 'BENCH_READY_CHATS must be an integer >= 0')
  const chatDeletion = process.env.BENCH_CHAT_DELETION
  if (chatDeletion !== undefined && chatDeletion !== 'off' && chatDeletion !== 'after_use' && chatDeletion !== 'scheduled') fail(WHO, `BENCH_CHAT_DELETION must be off, after_use or scheduled, got ${chatDeletion}`)
  const app = await buildServer({ qwenBaseUrl, cookies, readyChatsPerIdentity, ...(chatDeletion ? { chatDeletion } : {}), ...(redisUrl ? { redisUrl, stateSecret: 'bench-secret', replicaId: 'bench' } : {}) }, { logger })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.qwenTokens.ready()
  const addr = app.server.address()
  if (addr === null || typeof addr === 'string') fail(WHO, 'unexpected server address')

  serveCommands(() => app.close().then(() => undefined))
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`)
}

main().catch((err: unknown) => fail(WHO, (err as Error).stack ?? String(err)))
