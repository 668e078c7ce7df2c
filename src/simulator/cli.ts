/**
 * `npm run sim`: run the upstream simulator standalone.
 * Port: `--port N`, else `SIM_PORT`, else 8787. Host: `SIM_HOST`, else 127.0.0.1.
 * Site rules: `SIM_SITE` = `2026` (default) or `2025`.
 * Latency: `SIM_PROFILE` = `instant` (default) or `realistic`, and `SIM_CHAT_NEW_DELAY_MS`,
 * `SIM_FIRST_FRAME_DELAY_MS`, `SIM_FRAME_DELAY_MS`, `SIM_JITTER_PCT` (see `latency.ts`).
 */
import { startSimulator } from './index.js'
import { latencyFromEnv, type SimLatencyOptions } from './latency.js'

function port (): number {
  const i = process.argv.indexOf('--port')
  const raw = i >= 0 ? process.argv[i + 1] : process.env.SIM_PORT
  const n = Number(raw ?? 8787)
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`invalid port: ${raw}`)
    process.exit(1)
  }
  return n
}

function site (): '2025' | '2026' {
  const raw = process.env.SIM_SITE ?? '2026'
  if (raw !== '2025' && raw !== '2026') {
    console.error(`invalid SIM_SITE: ${raw} (2026 or 2025)`)
    process.exit(1)
  }
  return raw
}

function latency (): SimLatencyOptions {
  try {
    return latencyFromEnv(process.env)
  } catch (err) {
    console.error((err as Error).message)
    process.exit(1)
  }
}

const simSite = site()
const simLatency = latency()
const sim = await startSimulator({ port: port(), host: process.env.SIM_HOST ?? '127.0.0.1', site: simSite, latency: simLatency })
console.log(`qwen upstream simulator (${simSite} site rules, ${simLatency.profile ?? 'instant'} latency) listening on ${sim.url}`)
for (const a of sim.accounts) {
  console.log(`\n  ${a.email}  password: ${a.password}\n  cookie: ${a.cookie}`)
}
console.log(`
Control routes (JSON, no auth): GET/POST ${sim.url}/__sim/accounts, POST /__sim/scenarios {email, scenarios},
GET /__sim/log?since=N, DELETE /__sim/log, POST /__sim/reset, POST /__sim/revoke {email}, POST /__sim/expire {email}.
Point the gateway at it with QWEN_BASE_URL=${sim.url} (or the qwenBaseUrl option) and one of the cookies above.`)

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  sim.close().then(() => process.exit(0), () => process.exit(1))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
