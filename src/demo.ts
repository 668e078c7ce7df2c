/**
 * `npm run demo`: the upstream simulator on an ephemeral loopback port and the gateway wired to it
 * with the simulator's demo accounts, listening on 127.0.0.1:$PORT (8000 by default). The user's
 * COOKIE, API_KEY and config.json are deliberately ignored: nothing here talks to chat.qwen.ai.
 * The simulator runs the `realistic` latency profile (chat creation ~150 ms, first frame ~300 ms,
 * ~20 ms between frames) so that streaming looks like the real site; the gateway keeps its default
 * ready chats, so a new conversation does not wait for the chat creation.
 */
import { buildServer } from './build.js'
import { closeOnSignals } from './server.js'
import { startSimulator } from './simulator/index.js'

async function main (): Promise<void> {
  const port = process.env.PORT ? Number(process.env.PORT) : 8000
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${process.env.PORT}`)
  const sim = await startSimulator({ host: '127.0.0.1', port: 0, demoAccounts: 2, latency: { profile: 'realistic' } })
  const app = await buildServer({
    qwenBaseUrl: sim.url,
    cookies: sim.accounts.map((a) => a.cookie),
  }, { logger: { level: process.env.LOG_LEVEL ?? 'info' } })
  closeOnSignals(async () => { await app.close(); await sim.close() }, app.log)
  await app.listen({ port, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`
  process.stdout.write([
    '',
    `qwen-gateway demo: gateway ${base} -> simulator ${sim.url} (${sim.accounts.length} demo accounts, realistic latency, no real upstream)`,
    '',
    'Try it:',
    `  curl -s ${base}/v1/chat/completions -H 'content-type: application/json' \\`,
    `    -d '{"model":"qwen3-max","messages":[{"role":"user","content":"Hello!"}]}'`,
    '',
    `  curl -sN ${base}/v1/chat/completions -H 'content-type: application/json' \\`,
    `    -d '{"model":"qwen3-max-thinking","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`,
    '',
    `  curl -s ${base}/v1/models`,
    `  curl -s ${base}/health`,
    '',
    `Simulator control routes (scenarios, request log): ${sim.url}/__sim/log — see src/simulator/index.ts`,
    'Ctrl+C to stop.',
    '',
  ].join('\n'))
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed to start: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
