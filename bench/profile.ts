/**
 * Summarise a V8 `.cpuprofile` (written by `node --cpu-prof`) as self time per function, per file
 * and per area (project code, each npm package, Node internals, GC), optionally only over given
 * time windows. Windows are in microseconds of the monotonic clock, which is the clock of both the
 * profile's timestamps and `process.hrtime` on Linux (see `bench/gateway-child.ts`).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface Window { start: number; end: number }

export interface Row { key: string; selfMs: number; percent: number }

export interface ProfileSummary {
  /** Milliseconds of samples inside the windows, idle excluded. */
  busyMs: number
  idleMs: number
  samples: number
  functions: Row[]
  files: Row[]
  areas: Row[]
  /** True when no window matched the profile's clock and the whole profile was used. */
  wholeProfile: boolean
}

const PSEUDO = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

/** A readable location: project files relative to the repo, packages from their name on. */
function shortUrl (url: string, root: string): string {
  if (url === '') return ''
  let p = url
  if (p.startsWith('file://')) {
    try { p = fileURLToPath(p) } catch { /* keep it */ }
  }
  const nm = p.lastIndexOf('/node_modules/')
  if (nm !== -1) return p.slice(nm + '/node_modules/'.length)
  if (p.startsWith(root + '/')) return p.slice(root.length + 1)
  return p
}

/** The area a location belongs to: `gateway: dist/src/…`, `npm: <package>`, `node: internals`, or a pseudo node. */
function area (name: string, url: string): string {
  if (PSEUDO.has(name) && url === '') return name
  if (url === '') return '(native / unattributed)'
  if (url.startsWith('node:')) return 'node: internals'
  if (/^(dist\/)?(src|bench)\//.test(url)) return `gateway: ${url.split('/').slice(0, url.startsWith('dist/') ? 3 : 2).join('/')}`
  if (!url.startsWith('/')) {
    const parts = url.split('/')
    return `npm: ${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`
  }
  return 'other'
}

function top (m: Map<string, number>, total: number, n: number): Row[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, us]) => ({ key, selfMs: us / 1000, percent: total > 0 ? (100 * us) / total : 0 }))
}

export function summarizeProfile (file: string, windows: Window[], root: string, n = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, { fn: string; file: string; areaKey: string; pseudo: string | undefined }>()
  for (const node of prof.nodes) {
    const cf = node.callFrame
    const url = shortUrl(cf.url, root)
    const name = cf.functionName || '(anonymous)'
    const pseudo = PSEUDO.has(cf.functionName) && cf.url === '' ? cf.functionName : undefined
    byId.set(node.id, {
      fn: pseudo ?? (url ? `${name} ${url}:${cf.lineNumber + 1}` : `${name} (native)`),
      file: pseudo ?? (url || '(native)'),
      areaKey: area(cf.functionName, url),
      pseudo,
    })
  }

  // Timestamp of each sample; a sample lasts until the next one (as DevTools counts it).
  const n0 = prof.samples.length
  const ts = new Array<number>(n0)
  let t = prof.startTime
  for (let i = 0; i < n0; i++) {
    t += prof.timeDeltas[i] ?? 0
    ts[i] = t
  }
  const inWindows = (x: number): boolean => windows.some((w) => x >= w.start && x <= w.end)
  const wholeProfile = windows.length === 0 || !ts.some(inWindows)

  const fns = new Map<string, number>()
  const files = new Map<string, number>()
  const areas = new Map<string, number>()
  let busy = 0
  let idle = 0
  let count = 0
  for (let i = 0; i < n0; i++) {
    if (!wholeProfile && !inWindows(ts[i])) continue
    const dur = i + 1 < n0 ? ts[i + 1] - ts[i] : 0
    const info = byId.get(prof.samples[i])
    if (!info) continue
    count++
    if (info.pseudo === '(idle)') {
      idle += dur
      continue
    }
    busy += dur
    fns.set(info.fn, (fns.get(info.fn) ?? 0) + dur)
    files.set(info.file, (files.get(info.file) ?? 0) + dur)
    areas.set(info.areaKey, (areas.get(info.areaKey) ?? 0) + dur)
  }
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    samples: count,
    functions: top(fns, busy, n),
    files: top(files, busy, n),
    areas: top(areas, busy, n),
    wholeProfile,
  }
}

export function formatRows (title: string, rows: Row[]): string {
  const lines = [`${title}`, '  self ms   self %  location']
  for (const r of rows) lines.push(`  ${r.selfMs.toFixed(1).padStart(7)}  ${r.percent.toFixed(1).padStart(6)}%  ${r.key}`)
  return lines.join('\n')
}
