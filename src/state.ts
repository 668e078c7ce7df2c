/**
 * Pool state that survives a restart: health states, cooldown deadlines, counters, token expiries,
 * and tokens only when encrypted with a key from `STATE_SECRET`. Never a cookie or a password.
 *
 * The plugin gets a {@link StateFile}; `src/server.ts` gives it a {@link JsonStateFile}.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID, scryptSync } from 'node:crypto'
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { newHealth, type HealthRecord, type IdentityState } from './health.js'
import type { IdentityPool } from './pool.js'

export interface StateFile {
  /** The saved text, or undefined when nothing was saved yet. */
  load: () => Promise<string | undefined>
  save: (text: string) => Promise<void>
}

/** A JSON file written atomically (temp file + rename); the previous version is kept as `.bak`. */
export class JsonStateFile implements StateFile {
  constructor (readonly path: string) {}

  async load (): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async save (text: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true })
    const tmp = `${this.path}.${randomUUID()}.tmp`
    await writeFile(tmp, text, { mode: 0o600 })
    try {
      await copyFile(this.path, `${this.path}.bak`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    await rename(tmp, this.path)
  }
}

/** AES-256-GCM with a key derived from the secret. */
export class TokenCipher {
  private readonly key: Buffer

  constructor (secret: string) {
    this.key = scryptSync(secret, 'qwen-gateway state v1', 32)
  }

  encrypt (plain: string): string {
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', this.key, iv)
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()])
    return [iv, c.getAuthTag(), body].map((b) => b.toString('base64url')).join('.')
  }

  /** The plain text, or undefined when the value was not sealed with this key. */
  decrypt (sealed: string): string | undefined {
    const [iv, tag, body] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'))
    if (!iv || !tag || !body) return undefined
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, iv)
      d.setAuthTag(tag)
      return Buffer.concat([d.update(body), d.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }
}

interface SavedIdentity {
  state: IdentityState
  failures: number
  cooldownMs: number
  cooldownUntil?: number
  rateLimitedUntil?: number
  rateLimits: number
  challengedUntil?: number
  challenges: number
  authRefused?: boolean
  expiresAt?: number
  lastError?: string
  lastErrorAt?: number
  lastSuccess?: number
  /** Sealed with the STATE_SECRET key. */
  token?: string
}

interface SavedState { version: 1; savedAt: string; identities: Record<string, SavedIdentity> }

const STATES = new Set<IdentityState>(['healthy', 'degraded', 'down'])

export function serializePool (pool: IdentityPool, cipher: TokenCipher | undefined, now: number): string {
  const identities: Record<string, SavedIdentity> = {}
  for (const i of pool.identities) {
    const h = pool.health(i)
    const s: SavedIdentity = { state: h.state, failures: h.failures, cooldownMs: h.cooldownMs, rateLimits: h.rateLimits, challenges: h.challenges }
    if (h.cooldownUntil !== undefined) s.cooldownUntil = h.cooldownUntil
    if (h.rateLimitedUntil !== undefined) s.rateLimitedUntil = h.rateLimitedUntil
    if (h.challengedUntil !== undefined) s.challengedUntil = h.challengedUntil
    if (h.authRefused) s.authRefused = true
    if (i.expiresAt !== undefined) s.expiresAt = i.expiresAt
    if (h.lastError !== undefined) s.lastError = h.lastError
    if (h.lastErrorAt !== undefined) s.lastErrorAt = h.lastErrorAt
    if (h.lastSuccess !== undefined) s.lastSuccess = h.lastSuccess
    if (cipher && i.token !== undefined) s.token = cipher.encrypt(i.token)
    identities[i.id] = s
  }
  const state: SavedState = { version: 1, savedAt: new Date(now).toISOString(), identities }
  return JSON.stringify(state, null, 2) + '\n'
}

export class CorruptStateError extends Error {
  constructor (reason: string) {
    super(`the state file is unreadable (${reason}); it is ignored and will be rewritten`)
    this.name = 'CorruptStateError'
  }
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

/**
 * Apply saved state to the configured identities (matched by id). Returns how many identities and
 * tokens were restored. Throws CorruptStateError for a file that is not a state file.
 */
export function restorePool (pool: IdentityPool, text: string, cipher: TokenCipher | undefined): { identities: number; tokens: number } {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new CorruptStateError((err as Error).message)
  }
  const saved = parsed as Partial<SavedState>
  if (!saved || typeof saved !== 'object' || saved.version !== 1 || !saved.identities || typeof saved.identities !== 'object') {
    throw new CorruptStateError('not a version 1 state document')
  }
  let identities = 0
  let tokens = 0
  for (const i of pool.identities) {
    const s = saved.identities[i.id] as Partial<SavedIdentity> | undefined
    if (!s || typeof s !== 'object') continue
    identities++
    pool.restore(i, restoreOne(s))
    if (cipher && typeof s.token === 'string') {
      const token = cipher.decrypt(s.token)
      if (token !== undefined && i.token === undefined) {
        i.token = token
        i.expiresAt = num(s.expiresAt)
        tokens++
      }
    }
  }
  return { identities, tokens }
}

function restoreOne (s: Partial<SavedIdentity>): HealthRecord {
  const h = newHealth()
  if (s.state && STATES.has(s.state)) h.state = s.state
  h.failures = num(s.failures) ?? h.failures
  h.cooldownMs = num(s.cooldownMs) ?? h.cooldownMs
  h.cooldownUntil = num(s.cooldownUntil)
  h.rateLimitedUntil = num(s.rateLimitedUntil)
  h.rateLimits = num(s.rateLimits) ?? 0
  h.challengedUntil = num(s.challengedUntil)
  h.challenges = num(s.challenges) ?? 0
  h.authRefused = s.authRefused === true
  h.lastError = typeof s.lastError === 'string' ? s.lastError : undefined
  h.lastErrorAt = num(s.lastErrorAt)
  h.lastSuccess = num(s.lastSuccess)
  return h
}

/** Debounced saving: many changes in a burst become one write; `flush()` writes now. */
export class StatePersister {
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> = Promise.resolve()
  private dirty = false

  constructor (
    private readonly store: StateFile,
    private readonly render: () => string,
    private readonly debounceMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  schedule (): void {
    this.dirty = true
    if (this.timer) return
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush() }, this.debounceMs)
    this.timer.unref()
  }

  /** Write now if anything changed since the last write (or always, with `force`). */
  async flush (force = false): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined }
    if (!this.dirty && !force) return this.writing
    this.dirty = false
    const text = this.render()
    this.writing = this.writing.then(() => this.store.save(text)).catch((err: unknown) => this.onError(err))
    return this.writing
  }
}
