/**
 * Pool state that survives a restart: health states, cooldown deadlines, counters, token expiries,
 * a keyed hash of each cookie (to notice a changed one), and tokens only when encrypted with a key
 * from `STATE_SECRET` and the file's random salt. Never a cookie or a password.
 *
 * The plugin gets a {@link StateFile}; `src/server.ts` gives it a {@link JsonStateFile}.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomUUID, scryptSync } from 'node:crypto'
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { clearCooldowns, newHealth, type HealthRecord, type HealthStamps, type IdentityState } from './health.js'
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

/** The salt version-1 files used for every file (a fixed string): read once, then rewritten. */
const LEGACY_SALT = 'qwen-gateway state v1'
const TAG_BYTES = 16
const IV_BYTES = 12
const SALT_BYTES = 16

/**
 * AES-256-GCM with a key derived (scrypt) from the secret and the file's salt. A sealed value is
 * `iv.tag.body` (base64url); the tag must be the full 16 bytes. `aad` (the identity id) binds a
 * sealed token to its identity: sealed for one, it does not open for another.
 */
export class TokenCipher {
  private readonly key: Buffer

  constructor (secret: string, salt: Buffer | string) {
    this.key = scryptSync(secret, salt, 32)
  }

  encrypt (plain: string, aad?: string): string {
    const iv = randomBytes(IV_BYTES)
    const c = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES })
    if (aad !== undefined) c.setAAD(Buffer.from(aad, 'utf8'))
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()])
    return [iv, c.getAuthTag(), body].map((b) => b.toString('base64url')).join('.')
  }

  /** The plain text, or undefined when the value was not sealed with this key (and this `aad`). */
  decrypt (sealed: string, aad?: string): string | undefined {
    const parts = sealed.split('.')
    if (parts.length !== 3) return undefined
    const [iv, tag, body] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer]
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES })
      if (aad !== undefined) d.setAAD(Buffer.from(aad, 'utf8'))
      d.setAuthTag(tag)
      return Buffer.concat([d.update(body), d.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }
}

/**
 * What one state file is written with: its random salt, the token cipher derived from it and
 * `STATE_SECRET` (none without a secret), and the keyed hash that notices a changed cookie.
 */
export class StateKeys {
  readonly salt: Buffer
  readonly cipher: TokenCipher | undefined

  /** A fresh random salt unless the file's own is given. */
  constructor (secret: string | undefined, salt: Buffer = randomBytes(SALT_BYTES)) {
    this.salt = salt
    this.cipher = secret ? new TokenCipher(secret, salt) : undefined
  }

  /** HMAC-SHA256 of the cookie keyed with the salt: tells a changed cookie apart, never reveals it. */
  cookieHash (cookie: string): string {
    return createHmac('sha256', this.salt).update(cookie, 'utf8').digest('base64url')
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
  /** Switched off by the operator (dashboard). */
  disabled?: boolean
  /** When the parts of the record last changed (operator actions, what was learned). */
  stamps?: HealthStamps
  expiresAt?: number
  lastError?: string
  lastErrorAt?: number
  lastSuccess?: number
  /** Keyed hash of the identity's cookie ({@link StateKeys.cookieHash}); version 2. */
  cookieHash?: string
  /** Sealed with the STATE_SECRET key (version 2: the file's salt, the identity id as associated data). */
  token?: string
}

/** Version 1 (read only): fixed salt, tokens not bound to their identity, no cookie hash. */
interface SavedStateV1 { version: 1; savedAt: string; identities: Record<string, SavedIdentity> }
interface SavedState { version: 2; savedAt: string; salt: string; identities: Record<string, SavedIdentity> }

const STATES = new Set<IdentityState>(['healthy', 'degraded', 'down'])

export function serializePool (pool: IdentityPool, keys: StateKeys, now: number): string {
  const identities: Record<string, SavedIdentity> = {}
  for (const i of pool.identities) {
    const h = pool.health(i)
    const s: SavedIdentity = { state: h.state, failures: h.failures, cooldownMs: h.cooldownMs, rateLimits: h.rateLimits, challenges: h.challenges }
    if (h.cooldownUntil !== undefined) s.cooldownUntil = h.cooldownUntil
    if (h.rateLimitedUntil !== undefined) s.rateLimitedUntil = h.rateLimitedUntil
    if (h.challengedUntil !== undefined) s.challengedUntil = h.challengedUntil
    if (h.authRefused) s.authRefused = true
    if (h.disabled) s.disabled = true
    // The operator's "enabled" matters once stamped: it wins over an older "disabled" elsewhere.
    if (h.disabled === false && h.stamps?.disabled !== undefined) s.disabled = false
    if (h.stamps) s.stamps = { ...h.stamps }
    if (i.expiresAt !== undefined) s.expiresAt = i.expiresAt
    if (h.lastError !== undefined) s.lastError = h.lastError
    if (h.lastErrorAt !== undefined) s.lastErrorAt = h.lastErrorAt
    if (h.lastSuccess !== undefined) s.lastSuccess = h.lastSuccess
    if (i.cookie !== undefined) s.cookieHash = keys.cookieHash(i.cookie)
    if (keys.cipher && i.token !== undefined) s.token = keys.cipher.encrypt(i.token, i.id)
    identities[i.id] = s
  }
  const state: SavedState = { version: 2, savedAt: new Date(now).toISOString(), salt: keys.salt.toString('base64url'), identities }
  return JSON.stringify(state, null, 2) + '\n'
}

export class CorruptStateError extends Error {
  constructor (reason: string) {
    super(`the state file is unreadable (${reason}); it is ignored and will be rewritten`)
    this.name = 'CorruptStateError'
  }
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

export interface RestoreResult {
  /** Identities found in the file. */
  identities: number
  /** Sealed tokens restored. */
  tokens: number
  /** The file is in an old format: write it again now (it then holds a salt of its own and bound tokens). */
  migrated: boolean
  /** Labels of the identities whose cookie changed since the file was written (challenge cleared, token not used). */
  cookieChanged: string[]
  /** What to write the file with from now on: the file's own salt (version 2), or a fresh one. */
  keys: StateKeys
}

/**
 * Apply saved state to the configured identities (matched by id). Throws CorruptStateError for a
 * file that is not a state file.
 *
 * An identity whose cookie changed since the file was written (the operator passed the anti-bot
 * check in a browser and pasted the new cookie) keeps its saved health but not its challenge
 * cooldown nor its refused-credential flag, and its saved token is not used.
 */
export function restorePool (pool: IdentityPool, text: string, secret: string | undefined): RestoreResult {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new CorruptStateError((err as Error).message)
  }
  const saved = parsed as Partial<SavedState> | Partial<SavedStateV1> | null
  if (!saved || typeof saved !== 'object' || (saved.version !== 1 && saved.version !== 2) || !saved.identities || typeof saved.identities !== 'object') {
    throw new CorruptStateError('not a version 1 or 2 state document')
  }
  let keys: StateKeys
  let legacy: TokenCipher | undefined
  if (saved.version === 2) {
    const salt = typeof saved.salt === 'string' ? Buffer.from(saved.salt, 'base64url') : undefined
    if (!salt || salt.length < SALT_BYTES) throw new CorruptStateError('no salt')
    keys = new StateKeys(secret, salt)
  } else {
    keys = new StateKeys(secret)
    legacy = secret ? new TokenCipher(secret, LEGACY_SALT) : undefined
  }
  const result: RestoreResult = { identities: 0, tokens: 0, migrated: saved.version === 1, cookieChanged: [], keys }
  for (const i of pool.identities) {
    const s = saved.identities[i.id] as Partial<SavedIdentity> | undefined
    if (!s || typeof s !== 'object') continue
    result.identities++
    const h = restoreOne(s)
    const cookieChanged = i.cookie !== undefined && typeof s.cookieHash === 'string' && s.cookieHash !== keys.cookieHash(i.cookie)
    if (cookieChanged) {
      clearCooldowns(h, 'challenge')
      result.cookieChanged.push(i.label)
    }
    pool.restore(i, h)
    if (cookieChanged || typeof s.token !== 'string' || i.token !== undefined) continue
    const token = legacy ? legacy.decrypt(s.token) : keys.cipher?.decrypt(s.token, i.id)
    if (token !== undefined) {
      i.token = token
      i.expiresAt = num(s.expiresAt)
      result.tokens++
    }
  }
  return result
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
  if (typeof s.disabled === 'boolean' && (s.disabled || s.stamps?.disabled !== undefined)) h.disabled = s.disabled
  const stamps = restoreStamps(s.stamps)
  if (stamps) h.stamps = stamps
  h.lastError = typeof s.lastError === 'string' ? s.lastError : undefined
  h.lastErrorAt = num(s.lastErrorAt)
  h.lastSuccess = num(s.lastSuccess)
  return h
}

const STAMPS = ['disabled', 'reset', 'challengeReset', 'limit', 'breaker', 'challenge', 'auth'] as const

function restoreStamps (v: unknown): HealthStamps | undefined {
  if (!v || typeof v !== 'object') return undefined
  const out: HealthStamps = {}
  for (const k of STAMPS) {
    const n = num((v as Record<string, unknown>)[k])
    if (n !== undefined) out[k] = n
  }
  return Object.keys(out).length > 0 ? out : undefined
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
