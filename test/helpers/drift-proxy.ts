/**
 * A reverse proxy in front of the simulator that injects one named kind of upstream drift, without
 * touching the simulator: SSE frames of completions are rewritten line by line as they pass, JSON
 * bodies as a whole. Used as `QWEN_BASE_URL`. `close()` destroys every open socket.
 *
 * Drifts:
 * - `none`: forward unchanged;
 * - `renamed-field`: completion frames carry `outputs` instead of `choices`;
 * - `missing-phase`: answer deltas lose their `phase`;
 * - `new-error-body`: completions are answered with an error body in a shape nobody knows
 *   (HTTP 200, JSON `{"errno":…,"errmsg":…}`), without reaching the simulator;
 * - `model-list-shape`: the model list comes as `{"models":[…]}` instead of `{"data":[…]}`.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export const DRIFTS = ['none', 'renamed-field', 'missing-phase', 'new-error-body', 'model-list-shape'] as const
export type Drift = typeof DRIFTS[number]

export interface DriftProxy {
  /** e.g. http://127.0.0.1:43210 */
  url: string
  close: () => Promise<void>
}

const isCompletion = (path: string): boolean => path.startsWith('/api/v2/chat/completions')
const isModelList = (path: string): boolean => path === '/api/models' || path.startsWith('/api/v2/models')

/** One SSE frame (parsed JSON) after the drift. */
function rewriteFrame (drift: Drift, frame: Record<string, unknown>): Record<string, unknown> {
  if (drift === 'renamed-field' && 'choices' in frame) {
    const { choices, ...rest } = frame
    return { ...rest, outputs: choices }
  }
  if (drift === 'missing-phase' && Array.isArray(frame.choices)) {
    for (const c of frame.choices as Array<{ delta?: Record<string, unknown> }>) {
      if (c.delta?.phase === 'answer') delete c.delta.phase
    }
  }
  return frame
}

/** One line of an event stream after the drift (only `data:` lines holding JSON change). */
function rewriteLine (drift: Drift, line: string): string {
  if (!line.startsWith('data:')) return line
  const data = line.slice(5).trim()
  let frame: unknown
  try { frame = JSON.parse(data) } catch { return line }
  if (!frame || typeof frame !== 'object' || Array.isArray(frame)) return line
  return `data: ${JSON.stringify(rewriteFrame(drift, frame as Record<string, unknown>))}`
}

/** A JSON body after the drift. */
function rewriteJson (drift: Drift, path: string, text: string): string {
  if (drift !== 'model-list-shape' || !isModelList(path)) return text
  const body = JSON.parse(text) as { data?: unknown }
  const { data, ...rest } = body
  const list = Array.isArray(data) ? data : (data as { data?: unknown } | undefined)?.data
  return JSON.stringify({ ...rest, models: list })
}

function responseHeaders (h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...h }
  delete out['content-length']
  delete out['transfer-encoding']
  return out
}

export async function startDriftProxy (target: string, drift: Drift): Promise<DriftProxy> {
  const upstream = new URL(target)
  const sockets = new Set<Socket>()

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/'
    if (drift === 'new-error-body' && isCompletion(path)) {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ errno: 40_001, errmsg: 'service upgraded, please retry later', trace: 'a1b2c3' }))
      return
    }
    const up = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path,
      headers: { ...req.headers, host: upstream.host },
    }, (upRes) => {
      const ct = String(upRes.headers['content-type'] ?? '')
      res.writeHead(upRes.statusCode ?? 502, responseHeaders(upRes.headers))
      if (ct.includes('text/event-stream')) {
        let rest = ''
        upRes.setEncoding('utf8')
        upRes.on('data', (chunk: string) => {
          const lines = (rest + chunk).split('\n')
          rest = lines.pop()!
          if (lines.length) res.write(lines.map((l) => rewriteLine(drift, l)).join('\n') + '\n')
        })
        upRes.on('end', () => { res.end(rest ? rewriteLine(drift, rest) : undefined) })
      } else if (ct.includes('json')) {
        let text = ''
        upRes.setEncoding('utf8')
        upRes.on('data', (chunk: string) => { text += chunk })
        upRes.on('end', () => { res.end(rewriteJson(drift, path, text)) })
      } else {
        upRes.pipe(res)
      }
      upRes.on('error', () => res.destroy())
    })
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end() })
    res.on('close', () => { if (!res.writableFinished) up.destroy() })
    req.pipe(up)
  }

  const server = createServer(forward)
  server.on('connection', (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
