/**
 * `npm run probe` without the process: arguments, environment and output are passed in, the exit
 * code comes back (0 clean, 1 drift, 2 usage or configuration error). `src/probe-cli.ts` binds it
 * to the process. Configuration is read exactly as `npm start` reads it (`loadConfig`).
 */
import { ConfigError, loadConfig, type ConfigSources } from '../config.js'
import { splitProxy } from '../entries.js'
import { OptionsError, resolveOptions } from '../options.js'
import { probeClient } from './client.js'
import { formatReport } from './report.js'
import { runProbe } from './run.js'

export const USAGE = `Usage: npm run probe [-- --json] [-- --upload]

Checks the configured upstream (QWEN_BASE_URL, default https://chat.qwen.ai) with the first
configured cookie (COOKIE, COOKIE_FILE or cookie.txt; PROXY_URL is honoured): model list, one chat,
one tiny completion, one with thinking, chat deleted. At most six requests.
With --upload, also one 1-pixel PNG through the upload path (STS grant, signed object PUT) and one
turn of a vision model carrying it, in a chat deleted afterwards (at most five more requests).

  --json           print the report as JSON
  --upload         also check the upload path with a 1-pixel image
  --timeout-ms=N   budget of each step in milliseconds (default 60000)
  -h, --help       this text

Exit codes: 0 no drift, 1 drift (or the upstream refused), 2 usage or configuration error.
`

export interface ProbeIo extends ConfigSources {
  argv: readonly string[]
  out: (text: string) => void
  err: (text: string) => void
}

interface Args { json: boolean; help: boolean; upload: boolean; stepTimeoutMs?: number }

function parseArgs (argv: readonly string[]): Args | string {
  const a: Args = { json: false, help: false, upload: false }
  for (const arg of argv) {
    if (arg === '--json') a.json = true
    else if (arg === '--upload') a.upload = true
    else if (arg === '-h' || arg === '--help') a.help = true
    else if (arg.startsWith('--timeout-ms=')) {
      const n = Number(arg.slice('--timeout-ms='.length))
      if (!Number.isInteger(n) || n < 1) return `--timeout-ms wants a positive integer, got ${JSON.stringify(arg.slice(13))}`
      a.stepTimeoutMs = n
    } else return `unknown argument ${JSON.stringify(arg)}`
  }
  return a
}

export async function probeMain (io: ProbeIo): Promise<number> {
  const args = parseArgs(io.argv)
  if (typeof args === 'string') {
    io.err(`${args}\n\n${USAGE}`)
    return 2
  }
  if (args.help) {
    io.out(USAGE)
    return 0
  }
  let cfg
  try {
    cfg = resolveOptions(loadConfig(io).options)
  } catch (err) {
    if (err instanceof ConfigError || err instanceof OptionsError) {
      io.err(`${err.message}\n`)
      return 2
    }
    throw err
  }
  const entry = cfg.cookies[0]
  if (!entry) {
    io.err('No cookie configured: set COOKIE (or COOKIE_FILE, or cookie.txt) to a chat.qwen.ai browser cookie; see the README, "Checking the upstream".\n')
    return 2
  }
  const { value: cookie, proxyUrl } = splitProxy(entry)
  const upstream = new URL(cfg.qwenBaseUrl).origin
  const pc = probeClient(cfg)
  try {
    const report = await runProbe({
      client: pc.client, cookie, proxyUrl, upstream, upload: args.upload, ...(args.stepTimeoutMs ? { stepTimeoutMs: args.stepTimeoutMs } : {}),
    })
    io.out(args.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report))
    return report.ok ? 0 : 1
  } finally {
    await pc.close()
  }
}
