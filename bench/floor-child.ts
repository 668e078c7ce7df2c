/**
 * The zero-transform floor: the least a gateway must do for one completion, in its own process so
 * that its CPU and memory can be set against the gateway's (`bench/run.ts`). No Fastify, no SSE
 * parsing, no transformation:
 *   1. read and `JSON.parse` the request body (`model`, the last message's text, `stream`);
 *   2. open the upstream chat (`POST /api/v2/chats/new`) and read its id;
 *   3. open the completion (`POST /api/v2/chat/completions?chat_id=`) and relay the upstream bytes to
 *      the client as they come, for `stream: true` and for non-stream requests alike.
 * Upstream requests are built with the project's protocol module (paths, headers, bodies), so the
 * strict simulator accepts them, over an undici Agent with the gateway's keep-alive settings
 * (`src/upstream/connect.ts`). The session token is fetched once at start-up.
 *
 * Input: env `BENCH_QWEN_BASE_URL` (the simulator), `BENCH_COOKIES` (JSON array; the first is used).
 * Output: one JSON line `{"port": <number>}` once listening; then the commands of `child-control.ts`.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { Agent, type Dispatcher } from 'undici'
import {
  DEFAULT_WEB_VERSION, NEW_CHAT_PAGE, PATHS, TimezoneClock, buildHeaders, chatPage, completionBody, completionPath, newChatBody,
  type Credentials,
} from '../src/upstream/protocol.js'
import { fail, serveCommands } from './child-control.js'

const WHO = 'floor-child'
/** The gateway's defaults (options.ts / connect.ts). */
const CONNECT_TIMEOUT_MS = 10_000
const FIRST_BYTE_TIMEOUT_MS = 60_000
const IDLE_TIMEOUT_MS = 120_000
const MAX_CONNECTIONS = 1024

interface Upstream {
  origin: string
  agent: Agent
  cred: Credentials
  clock: TimezoneClock
}

function headers (u: Upstream, page: string, json: boolean, accept?: string): Record<string, string> {
  const now = Date.now()
  return buildHeaders(u.cred, {
    requestId: randomUUID(), json, webVersion: DEFAULT_WEB_VERSION, page, now, timezone: u.clock.at(now), ...(accept ? { accept } : {}),
  })
}

function post (u: Upstream, path: string, page: string, body: unknown, signal: AbortSignal, accept?: string): Promise<Dispatcher.ResponseData> {
  return u.agent.request({
    origin: u.origin, path, method: 'POST', headers: headers(u, page, true, accept), body: JSON.stringify(body), signal,
    headersTimeout: FIRST_BYTE_TIMEOUT_MS, bodyTimeout: IDLE_TIMEOUT_MS,
  })
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function lastText (messages: unknown): string | undefined {
  if (!Array.isArray(messages) || messages.length === 0) return undefined
  const m = messages[messages.length - 1] as { content?: unknown } | null
  return typeof m?.content === 'string' ? m.content : undefined
}

function refuse (res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) { res.destroy(); return }
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ error: { message, type: 'floor_error', param: null, code: null } }))
}

async function complete (u: Upstream, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ac = new AbortController()
  res.once('close', () => { if (!res.writableFinished) ac.abort() })
  let body: { model?: unknown; messages?: unknown }
  try {
    body = JSON.parse(await readBody(req)) as typeof body
  } catch {
    return refuse(res, 400, 'body is not JSON')
  }
  const content = lastText(body?.messages)
  if (typeof body?.model !== 'string' || content === undefined) return refuse(res, 400, 'model and messages[-1].content are required')
  const model = body.model

  const chat = await post(u, PATHS.newChat, NEW_CHAT_PAGE, newChatBody(model, 't2t', Date.now()), ac.signal)
  const chatId = (await chat.body.json() as { data?: { id?: unknown } }).data?.id
  if (typeof chatId !== 'string') return refuse(res, 502, 'the upstream returned no chat id')

  const turn = { chatId, model, chatType: 't2t' as const, thinking: false, content, parentId: null }
  const up = await post(u, completionPath(chatId), chatPage(chatId), completionBody(turn, Date.now()), ac.signal, 'application/json')
  res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/octet-stream'), 'cache-control': 'no-cache' })
  await pipeline(up.body, res)
}

async function main (): Promise<void> {
  const base = process.env.BENCH_QWEN_BASE_URL
  if (!base) fail(WHO, 'BENCH_QWEN_BASE_URL is not set')
  const cookie = (JSON.parse(process.env.BENCH_COOKIES ?? '[]') as unknown[])[0]
  if (typeof cookie !== 'string') fail(WHO, 'BENCH_COOKIES must be a JSON array of strings')
  const origin = new URL(base).origin
  const agent = new Agent({
    keepAliveTimeout: 10_000, keepAliveMaxTimeout: 600_000, connections: MAX_CONNECTIONS, pipelining: 1, connect: { timeout: CONNECT_TIMEOUT_MS },
  })
  const u: Upstream = { origin, agent, cred: { cookie }, clock: new TimezoneClock() }

  // The session token, once (not measured).
  const auth = await agent.request({ origin, path: PATHS.auths, method: 'GET', headers: headers(u, '/', false) })
  const token = (await auth.body.json() as { token?: unknown }).token
  if (auth.statusCode !== 200 || typeof token !== 'string') fail(WHO, `GET ${PATHS.auths} answered ${auth.statusCode} without a token`)
  u.cred = { cookie, token }

  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return refuse(res, 404, 'not found')
    complete(u, req, res).catch((err: unknown) => refuse(res, 502, (err as Error).message))
  })
  server.keepAliveTimeout = 72_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const addr = server.address()
  if (addr === null || typeof addr === 'string') fail(WHO, 'unexpected server address')

  serveCommands(async () => {
    server.close()
    server.closeAllConnections()
    await agent.close()
  })
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`)
}

main().catch((err: unknown) => fail(WHO, (err as Error).stack ?? String(err)))
