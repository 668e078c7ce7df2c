/**
 * Accounts added at runtime from the dashboard: parsed from pasted lines (a cookie, or
 * `email:password`, one per line), added to the pool, given a token by the token service, and kept
 * sealed in `qwenStore.accounts` when `STATE_SECRET` is set (restored at start-up); without a secret
 * they live in memory until restart. Configured accounts (env, files) are never touched here.
 */
import { splitAccount, splitProxy } from '../entries.js'
import { cleanCookie, cookieProblem } from '../options.js'
import { makeIdentity, type Identity, type IdentityPool } from '../pool.js'
import type { RefreshResult } from '../tokens.js'
import type { AccountStore } from './accounts.js'
import { maskEmail } from './mask.js'
import { openAccount, sealAccount, type AccountSecret } from './seal.js'

const EMAIL = /^[^\s=;:@]+@[^\s=;:@]+$/

/** One pasted line as an account, or why it is not one (the reason never quotes the line). */
export function parseAccountLine (line: string): { account: AccountSecret } | { problem: string } {
  const { value, proxyUrl } = splitProxy(line.trim())
  const proxy = proxyUrl ? { proxyUrl } : {}
  const acc = splitAccount(value)
  if (acc && EMAIL.test(acc.email)) return { account: { email: acc.email, password: acc.password, ...proxy } }
  const cookie = cleanCookie(value)
  if (!cookie.includes('=')) return { problem: 'is neither a cookie (name=value; …) nor email:password' }
  const problem = cookieProblem(cookie)
  if (problem) return { problem: `cookie ${problem}` }
  return { account: { cookie, ...proxy } }
}

/** What adding one line did. */
export interface AddResult { line: number; ok: boolean; id?: string; label?: string; error?: string }

interface Deps {
  pool: IdentityPool
  store: AccountStore
  /** STATE_SECRET: without it nothing is stored. */
  secret: string | undefined
  /** Whether the store outlives the process (the shared store, Redis); the in-memory one does not. */
  durable: boolean
  refresh: (i: Identity) => Promise<RefreshResult>
  now: () => number
  log: { warn: (obj: object, msg?: string) => void }
}

export class RuntimeAccounts {
  /** Runtime identity ids and when they were added. */
  private readonly added = new Map<string, number>()
  /** Stored accounts that do not open with this secret (reported once). */
  private readonly unreadable = new Set<string>()

  constructor (private readonly deps: Deps) {}

  /** Whether runtime accounts survive a restart: sealed with STATE_SECRET into a store that outlives the process (Redis). */
  get persistent (): boolean {
    return this.deps.secret !== undefined && this.deps.durable
  }

  has (id: string): boolean {
    return this.added.has(id)
  }

  list (): Array<{ id: string; addedAt: number }> {
    return [...this.added].map(([id, addedAt]) => ({ id, addedAt }))
  }

  private identity (a: AccountSecret): Identity {
    const p = a.proxyUrl ? { proxyUrl: a.proxyUrl } : {}
    return 'cookie' in a ? makeIdentity({ cookie: a.cookie, source: 'runtime', ...p }) : makeIdentity({ email: a.email, password: a.password, source: 'runtime', ...p })
  }

  /** Add every line (blank lines and `#` comments skipped); each new identity fetches its token before this resolves. */
  async add (text: string): Promise<AddResult[]> {
    const out: AddResult[] = []
    const lines = text.replace(/\r/g, '').split('\n')
    for (const [k, raw] of lines.entries()) {
      if (raw.trim() === '' || raw.trim().startsWith('#')) continue
      const parsed = parseAccountLine(raw)
      if ('problem' in parsed) {
        out.push({ line: k + 1, ok: false, error: `line ${k + 1} ${parsed.problem}` })
        continue
      }
      const i = this.identity(parsed.account)
      const label = i.email !== undefined ? maskEmail(i.email) : i.id
      if (!this.deps.pool.add(i)) {
        out.push({ line: k + 1, ok: false, id: i.id, label, error: `line ${k + 1}: this account is already in the pool` })
        continue
      }
      const addedAt = this.deps.now()
      this.added.set(i.id, addedAt)
      if (this.deps.secret !== undefined) {
        await this.deps.store.put({ id: i.id, sealed: sealAccount(this.deps.secret, i.id, parsed.account), addedAt })
      }
      const r = await this.deps.refresh(i)
      out.push({ line: k + 1, ok: true, id: i.id, label, ...(r.success ? {} : { error: 'added, but no token yet: the upstream refused or failed the sign-in (see its last error)' }) })
    }
    return out
  }

  /** Remove a runtime account: undefined when it is not one (unknown or configured). */
  async remove (id: string): Promise<boolean> {
    if (!this.added.has(id)) return false
    this.added.delete(id)
    this.deps.pool.remove(id)
    await this.deps.store.delete(id)
    return true
  }

  /** Start-up: put the stored runtime accounts back into the pool (they fetch tokens with the others). */
  async restore (): Promise<number> {
    return (await this.sync()).added
  }

  /**
   * Follow the store (another replica added or removed an account, or the shared store came back):
   * stored accounts missing from the pool are added, runtime accounts no longer stored are removed.
   */
  async sync (): Promise<{ added: number; removed: number }> {
    const secret = this.deps.secret
    if (secret === undefined) return { added: 0, removed: 0 }
    let n = 0
    const stored = await this.deps.store.list()
    const ids = new Set(stored.map((s) => s.id))
    let removed = 0
    for (const id of [...this.added.keys()]) {
      if (ids.has(id)) continue
      this.added.delete(id)
      this.deps.pool.remove(id)
      removed++
    }
    for (const s of stored) {
      if (this.added.has(s.id)) continue
      const opened = openAccount(secret, s.id, s.sealed)
      if (!opened) {
        if (!this.unreadable.has(s.id)) this.deps.log.warn({ identity: s.id }, 'a stored runtime account does not open with this STATE_SECRET: skipped')
        this.unreadable.add(s.id)
        continue
      }
      const i = this.identity(opened)
      if (i.id !== s.id || !this.deps.pool.add(i)) continue
      this.added.set(i.id, s.addedAt)
      n++
    }
    return { added: n, removed }
  }
}
