/**
 * `npm run probe`: check the live upstream for drift (see `src/probe/`). The only probe module
 * that touches `process`. Exit code 0 clean, 1 drift, 2 usage or configuration error.
 */
import { environment, readRelative } from './server.js'
import { probeMain } from './probe/main.js'

probeMain({
  argv: process.argv.slice(2),
  env: environment(),
  readFile: readRelative,
  out: (text) => { process.stdout.write(text) },
  err: (text) => { process.stderr.write(text) },
}).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`probe failed: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
