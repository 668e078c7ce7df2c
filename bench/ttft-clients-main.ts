/**
 * The TTFT clients' process (`ttft-spawn.ts` starts it): rounds on command (`ttft-clients.ts`),
 * until `close` or the parent goes away.
 */
import { Agent } from 'undici'
import { runRound, type ClientsCommand, type ClientsReply } from './ttft-clients.js'

const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 })
const exit = (code: number): void => {
  void agent.close().finally(() => process.exit(code))
  setTimeout(() => process.exit(code), 2_000).unref()
}
process.on('disconnect', () => { exit(0) })
process.on('message', (m: ClientsCommand) => {
  if (m.op === 'close') return exit(0)
  runRound(agent, m).then((results) => { process.send?.({ results } satisfies ClientsReply) }, (err: unknown) => {
    process.send?.({ results: [], fatal: (err as Error).message } satisfies ClientsReply)
  })
})
process.send?.({ ready: true })
