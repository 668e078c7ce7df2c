/**
 * A real `redis-server` for one test file: a free loopback port, no persistence, killed by PID in
 * teardown. `kill`, `freeze`/`thaw` (SIGSTOP/SIGCONT) and `restart` (empty, same port) let tests
 * take it away under a running gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../bench/free-port.js'

export interface RedisServer {
  url: string
  port: number
  kill: () => Promise<void>
  freeze: () => void
  thaw: () => void
  restart: () => Promise<void>
  stop: () => Promise<void>
}

/** Resolves once the server answers PING. */
async function pinged (port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1')
      sock.once('error', () => { resolve(false) })
      sock.once('connect', () => { sock.write('PING\r\n') })
      sock.once('data', (d) => { sock.destroy(); resolve(d.toString().startsWith('+PONG')) })
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`redis-server on ${port} did not answer`)
}

export async function startRedis (t: { teardown: (fn: () => unknown) => void }): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'qg-redis-'))
  let child: ChildProcess | undefined
  const exited = async (c: ChildProcess): Promise<void> => {
    if (c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => c.once('exit', () => { resolve() }))
  }
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
    await pinged(port, Date.now() + 10_000)
  }
  const kill = async (): Promise<void> => {
    const c = child
    if (!c) return
    child = undefined
    c.kill('SIGCONT')
    c.kill('SIGKILL')
    await exited(c)
  }
  await start()
  t.teardown(async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    freeze: () => { child?.kill('SIGSTOP') },
    thaw: () => { child?.kill('SIGCONT') },
    restart: async () => {
      await kill()
      await start()
    },
    stop: kill,
  }
}

/**
 * Wait (bounded) until a gateway's store is shared: start-up waits at most 0.75 s for Redis, which a
 * loaded machine may need longer for. Returns the mode then.
 */
export async function untilShared (app: { qwenStoreInfo: { mode: () => string } }, ms = 5_000): Promise<string> {
  const end = Date.now() + ms
  while (app.qwenStoreInfo.mode() !== 'redis' && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 25))
  return app.qwenStoreInfo.mode()
}

/** Wait until `cond` holds, checking every 10 ms; throws after `ms` (generous: CI machines are loaded). */
export async function until (cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
