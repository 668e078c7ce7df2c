/**
 * A tiny local HTTP proxy for tests: CONNECT tunnels (via `net.connect`) and plain absolute-URI
 * forwarding, both counted. `close()` destroys every open socket.
 */
import { createServer, request as httpRequest } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'

export interface TestProxy {
  /** e.g. http://127.0.0.1:43210 */
  url: string
  /** CONNECT tunnels opened. */
  tunnels: number
  /** Absolute-URI requests forwarded. */
  requests: number
  /** `METHOD /path` of every request seen: forwarded ones, and those sniffed inside tunnels. */
  seen: string[]
  close: () => Promise<void>
}

const REQUEST_LINE = /(?:^|\r\n)(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) HTTP\/1\.[01]\r\n/g

export async function startProxy (): Promise<TestProxy> {
  const sockets = new Set<Socket>()
  const track = (s: Socket): void => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  }

  const server = createServer((req, res) => {
    // Plain forwarding: the request line carries the absolute URI.
    let target: URL
    try {
      target = new URL(req.url ?? '')
    } catch {
      res.writeHead(400).end('absolute URI required')
      return
    }
    proxy.requests++
    proxy.seen.push(`${req.method} ${target.pathname}`)
    const up = httpRequest({
      host: target.hostname,
      port: target.port || 80,
      method: req.method,
      path: target.pathname + target.search,
      headers: req.headers,
    }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end() })
    req.pipe(up)
  })
  server.on('connection', track)
  /** Note the request lines going up a tunnel (plain HTTP inside: the simulator is not TLS). */
  const sniff = (chunk: Buffer): void => {
    for (const m of chunk.toString('latin1').matchAll(REQUEST_LINE)) proxy.seen.push(`${m[1]} ${m[2]!.split('?')[0]}`)
  }
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const [host, port] = (req.url ?? '').split(':')
    proxy.tunnels++
    const upstream = connect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length) { sniff(head); upstream.write(head) }
      client.on('data', sniff)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    track(upstream)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const proxy: TestProxy = {
    url: `http://127.0.0.1:${port}`,
    tunnels: 0,
    requests: 0,
    seen: [],
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
      server.closeAllConnections()
    }),
  }
  return proxy
}
