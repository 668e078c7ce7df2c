/**
 * Where the dashboard's files are: `admin-ui/` at the package root (found from this module, so it
 * works from the sources, from `dist/` and inside a host app), and the Preact / htm ES modules in
 * `node_modules`. The page's import map is allowed by its SHA-256 in the CSP.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The `admin-ui` folder: the first one found walking up from `from` (this module's folder by default). */
export function adminUiDir (from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from
  for (;;) {
    const candidate = join(dir, 'admin-ui')
    if (existsSync(join(candidate, 'index.html'))) return candidate
    const up = dirname(dir)
    if (up === dir) throw new Error(`admin-ui/index.html not found above ${from}`)
    dir = up
  }
}

/** The folders holding `preact.mjs`, `hooks.mjs` and `htm.mjs`. */
export function vendorDirs (): string[] {
  const require = createRequire(import.meta.url)
  return ['preact', 'preact/hooks', 'htm'].map((m) => dirname(require.resolve(m)))
}

export const VENDOR_FILES = new Set(['preact.mjs', 'hooks.mjs', 'htm.mjs'])

/** The page and the CSP that lets exactly its inline import map run. */
export function loadIndex (dir: string): { html: string; csp: string } {
  const html = readFileSync(join(dir, 'index.html'), 'utf8')
  const m = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)
  if (!m) throw new Error('admin-ui/index.html has no import map')
  const hash = createHash('sha256').update(m[1]!, 'utf8').digest('base64')
  const csp = [
    "default-src 'self'", "connect-src 'self'", "img-src 'self' data:", "style-src 'self'",
    `script-src 'self' 'sha256-${hash}'`, "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ')
  return { html, csp }
}
