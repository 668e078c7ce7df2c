/**
 * The parent side of a benchmark child process (`gateway-child.ts` or `floor-child.ts`): spawn it,
 * read the port it prints, send it commands (`child-control.ts`), close it in bounded time.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { ChildReply } from './child-control.js'

export type { ChildReply }

export interface Child {
  name: string
  port: number
  url: string
  proc: ChildProcess
  /** CPU, clock, memory and open sockets of the child. */
  snapshot (): Promise<ChildReply>
  /** The same after a full garbage collection in the child. */
  snapshotAfterGc (): Promise<ChildReply>
  close (): Promise<void>
}

/** `p`, or a rejection after `ms`. */
export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms) })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

function isReply (m: unknown): m is ChildReply {
  return typeof m === 'object' && m !== null && 'cpu' in m && 'hrtimeUs' in m
}

export interface ChildOptions {
  name: string
  script: string
  env: Record<string, string>
  /** Extra node flags (e.g. `--cpu-prof`). `--expose-gc` is always given. */
  nodeArgs?: string[]
  log: (msg: string) => void
}

export async function startChild (o: ChildOptions): Promise<Child> {
  const proc = spawn(process.execPath, ['--expose-gc', ...(o.nodeArgs ?? []), o.script], {
    stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, ...o.env },
  })
  let exited = false
  const exit = new Promise<void>((resolve) => proc.once('exit', () => { exited = true; resolve() }))

  const port = await withTimeout(new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! })
    rl.once('line', (line) => {
      rl.close()
      try {
        const p = (JSON.parse(line) as { port?: unknown }).port
        if (typeof p === 'number') resolve(p)
        else reject(new Error(`${o.name} child printed ${line}`))
      } catch {
        reject(new Error(`${o.name} child printed ${line}`))
      }
    })
    proc.once('exit', (code, signal) => reject(new Error(`${o.name} child exited during start-up (code ${code}, signal ${signal})`)))
    proc.once('error', reject)
  }), 20_000, `${o.name} child start-up`).catch((err: unknown) => {
    proc.kill('SIGKILL')
    throw err
  })
  proc.stdout!.resume() // nothing more is expected there; never let the pipe fill up

  const ask = (cmd: 'cpu' | 'gc'): Promise<ChildReply> => withTimeout(new Promise<ChildReply>((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (!isReply(m)) return
      proc.off('message', onMessage)
      resolve(m)
    }
    proc.on('message', onMessage)
    if (!proc.send(cmd)) reject(new Error(`${o.name} child IPC channel is closed`))
  }), 10_000, `${o.name} ${cmd} snapshot`)

  return {
    name: o.name,
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    snapshot: () => ask('cpu'),
    snapshotAfterGc: () => ask('gc'),
    async close () {
      if (exited) return
      if (proc.connected) proc.send('close')
      else proc.kill('SIGTERM')
      // The child exits after closing its server; with --cpu-prof it also writes its profile first.
      const ok = await withTimeout(exit, 15_000, `${o.name} child exit`).then(() => true, () => false)
      if (!ok) {
        o.log(`${o.name} child did not exit in time, killing it`)
        proc.kill('SIGKILL')
        await withTimeout(exit, 5_000, `${o.name} child kill`).catch(() => undefined)
      }
    },
  }
}
