/** The parent side of the TTFT clients' process (`ttft-clients.ts`): spawn it, run rounds in it, close it in bounded time. */
import { spawn } from 'node:child_process'
import { withTimeout } from './child.js'
import type { ClientResult, ClientsCommand, ClientsReply } from './ttft-clients.js'

export interface Clients {
  /** One round of concurrent requests in the clients' process (one at a time). */
  run: (cmd: Exclude<ClientsCommand, { op: 'close' }>) => Promise<ClientResult[]>
  close: () => Promise<void>
}

export async function startClients (script: string, log: (m: string) => void): Promise<Clients> {
  const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let exited = false
  const exit = new Promise<void>((resolve) => proc.once('exit', () => { exited = true; resolve() }))
  const next = <T>(what: string, ms: number, pick: (m: unknown) => T | undefined): Promise<T> => withTimeout(new Promise<T>((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      const v = pick(m)
      if (v === undefined) return
      off()
      resolve(v)
    }
    const onExit = (): void => {
      off()
      reject(new Error(`the TTFT clients' process exited during ${what}`))
    }
    const off = (): void => {
      proc.off('message', onMessage)
      proc.off('exit', onExit)
    }
    proc.on('message', onMessage)
    proc.once('exit', onExit)
  }), ms, `TTFT clients ${what}`)
  try {
    await next('start-up', 20_000, (m) => (m as { ready?: boolean }).ready === true ? true : undefined)
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return {
    async run (cmd) {
      const reply = next('round', 60_000, (m) => Array.isArray((m as ClientsReply).results) ? m as ClientsReply : undefined)
      if (!proc.send(cmd)) throw new Error('the TTFT clients\' IPC channel is closed')
      const r = await reply
      if (r.fatal !== undefined) throw new Error(`TTFT clients: ${r.fatal}`)
      return r.results
    },
    async close () {
      if (exited) return
      if (proc.connected) proc.send({ op: 'close' } satisfies ClientsCommand)
      else proc.kill('SIGTERM')
      if (!await withTimeout(exit, 5_000, 'TTFT clients exit').then(() => true, () => false)) {
        log('the TTFT clients\' process did not exit in time, killing it')
        proc.kill('SIGKILL')
        await withTimeout(exit, 5_000, 'TTFT clients kill').catch(() => undefined)
      }
    },
  }
}
