/**
 * Suites that need a real system component (Debian's `redis-server`, `chromium`) skip with one line
 * naming the package when it is missing; `.ci/run` installs them, so CI runs everything.
 */
import { execFileSync } from 'node:child_process'

/** The absolute path of `command` on PATH (or the given candidates), or undefined. */
export function findBinary (command: string, candidates: string[] = []): string | undefined {
  for (const c of candidates) {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore', timeout: 20_000 })
      return c
    } catch {}
  }
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

/** The skip reason for `t.test(name, { skip }, …)`: false when `command` exists. */
export function skipWithout (command: string, debianPackage: string): string | false {
  return findBinary(command) ? false : `${command} is not installed: apt-get install ${debianPackage} to run this suite`
}
