/** A local (127.0.0.1) HTTP server that serves media for the fetch tests: files, redirects, stalls. */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface MediaServer {
  url: string
  port: number
  /** Paths requested, in order. */
  hits: string[]
  /** The Host header of each request. */
  hosts: string[]
}

/**
 * Routes: `/file/<name>` serves `files[name]`; `/redirect/<n>` redirects n times, then to
 * `/file/png`; `/to?url=<u>` redirects to `u`; `/nolocation` is a 302 without Location; `/slow`
 * sends headers and then nothing; `/stream/<bytes>` streams that many bytes without a length;
 * anything else is 404.
 */
export async function startMediaServer (t: { teardown: (fn: () => unknown) => void }, files: Record<string, Buffer>): Promise<MediaServer> {
  const hits: string[] = []
  const hosts: string[] = []
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    hits.push(u.pathname)
    hosts.push(req.headers.host ?? '')
    const [, route, arg] = u.pathname.split('/')
    if (route === 'file' && arg && files[arg]) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': files[arg].length })
      res.end(files[arg])
    } else if (route === 'redirect') {
      const n = Number(arg)
      res.writeHead(302, { location: n > 1 ? `/redirect/${n - 1}` : '/file/png' })
      res.end()
    } else if (route === 'to') {
      res.writeHead(307, { location: u.searchParams.get('url') ?? '/' })
      res.end()
    } else if (route === 'nolocation') {
      res.writeHead(302)
      res.end()
    } else if (route === 'slow') {
      res.writeHead(200, { 'content-type': 'image/png' })
      res.write(Buffer.from([0x89, 0x50]))
    } else if (route === 'stream') {
      res.writeHead(200, { 'content-type': 'image/png' })
      let left = Number(arg)
      const push = (): void => {
        while (left > 0) {
          const n = Math.min(left, 64 * 1024)
          left -= n
          if (!res.write(Buffer.alloc(n, 0x41))) { res.once('drain', push); return }
        }
        res.end()
      }
      push()
    } else {
      res.writeHead(404)
      res.end('not found')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, port, hits, hosts }
}
