/**
 * The gateway's API keys (DECISIONS "Several API keys"): `API_KEY` lists several keys separated by
 * `|||` (or newlines), each optionally named (`alice:sk-…`); a key without a name is named by a
 * short hash of it. `ADMIN_API_KEY` is the admin key; without it the first listed key is. Only
 * digests are kept; a presented key is compared against every digest in constant time. Names, never
 * keys, go to logs, metrics and the dashboard.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

/** A key's name: letters, digits, `_`, `.`, `-`, at most 64 characters. */
export const KEY_NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** The name callers get on an open gateway (no `API_KEY`). */
export const ANONYMOUS_KEY_NAME = 'anonymous'

/** The name of the admin key when `ADMIN_API_KEY` does not name it (and it is not also an `API_KEY` entry). */
export const ADMIN_KEY_NAME = 'admin'

/** One configured key, as kept in memory: its name and the digest of the key. */
export interface ApiKeyEntry { name: string; digest: Buffer }

/** A key list that cannot be used; the message never contains a key. */
export class KeyListError extends Error {
  /** Which setting is wrong: the key list, or the admin key. */
  constructor (message: string, readonly source: 'apiKey' | 'adminApiKey' = 'apiKey') {
    super(message)
    this.name = 'KeyListError'
  }
}

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** The name of an unnamed key: `key-` and 8 hex digits of its SHA-256 (not enough to guess the key). */
export function hashName (key: string): string {
  return `key-${digest(key).toString('hex').slice(0, 8)}`
}

/** `name:key` or a bare key. A key that contains `:` itself must be named (`name:abc:def`). */
function parseEntry (raw: string): { name: string; key: string; named: boolean } {
  const colon = raw.indexOf(':')
  if (colon > 0) {
    const name = raw.slice(0, colon).trim()
    const key = raw.slice(colon + 1).trim()
    if (KEY_NAME.test(name) && key.length > 0) return { name, key, named: true }
  }
  return { name: hashName(raw), key: raw, named: false }
}

/** Split an `API_KEY` value into named keys; throws `KeyListError` for an empty key, a control character or a duplicate. */
export function parseKeyList (text: string): Array<{ name: string; key: string }> {
  const out: Array<{ name: string; key: string }> = []
  const entries = text.replace(/\r/g, '').split(/\|\|\||\n/).map((e) => e.trim()).filter((e) => e.length > 0)
  entries.forEach((raw, i) => {
    const { name, key } = parseEntry(raw)
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(key)) throw new KeyListError(`entry ${i + 1} (${name}) contains a control character`)
    if (out.some((k) => k.name === name)) throw new KeyListError(`entry ${i + 1}: the name ${name} is used twice`)
    if (out.some((k) => k.key === key)) throw new KeyListError(`entry ${i + 1} (${name}) repeats the key of another entry`)
    out.push({ name, key })
  })
  return out
}

/**
 * The configured keys. `enabled`: API routes need a key. `admin`: the admin key's entry (undefined
 * when no key is configured at all: admin routes then answer loopback callers only).
 */
export class KeyRing {
  readonly entries: readonly ApiKeyEntry[]
  readonly admin: ApiKeyEntry | undefined
  /** Whether API routes need a key (`API_KEY` is set). */
  readonly enabled: boolean

  constructor (apiKey: string | undefined, adminApiKey: string | undefined) {
    const list = apiKey ? parseKeyList(apiKey) : []
    const entries: ApiKeyEntry[] = list.map((k) => ({ name: k.name, digest: digest(k.key) }))
    this.enabled = entries.length > 0
    let admin: ApiKeyEntry | undefined = entries[0]
    if (adminApiKey) {
      const a = parseEntry(adminApiKey.trim())
      // eslint-disable-next-line no-control-regex
      if (/[\x00-\x1f\x7f]/.test(a.key)) throw new KeyListError('the admin key contains a control character', 'adminApiKey')
      const same = list.find((k) => k.key === a.key)
      if (same) {
        admin = entries.find((e) => e.name === same.name)
      } else {
        const name = a.named ? a.name : ADMIN_KEY_NAME
        if (list.some((k) => k.name === name)) throw new KeyListError(`the admin key's name ${name} is also the name of an API_KEY entry`, 'adminApiKey')
        admin = { name, digest: digest(a.key) }
        entries.push(admin)
      }
    }
    this.entries = entries
    this.admin = admin
  }

  /** Every key's name. */
  get names (): string[] {
    return this.entries.map((e) => e.name)
  }

  /** The entry whose key was presented, comparing against every digest (no early exit). */
  match (presented: string | undefined): ApiKeyEntry | undefined {
    if (presented === undefined || this.entries.length === 0) return undefined
    const d = digest(presented)
    let found: ApiKeyEntry | undefined
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && !found) found = e
    return found
  }

  /** Whether the presented key is the admin key. */
  isAdmin (presented: string | undefined): boolean {
    return this.admin !== undefined && this.match(presented) === this.admin
  }
}
