/**
 * Runtime accounts sealed for `qwenStore.accounts` (AES-256-GCM from `src/state.ts`, a key derived
 * from `STATE_SECRET` and a random salt per account, the identity id as associated data). A sealed
 * account is `<salt>.<iv>.<tag>.<body>` (base64url).
 */
import { randomBytes } from 'node:crypto'
import { TokenCipher } from '../state.js'

/** What a runtime account is made of: a cookie, or e-mail and password. Only ever stored sealed. */
export type AccountSecret = ({ cookie: string } | { email: string; password: string }) & { proxyUrl?: string }

export function sealAccount (secret: string, id: string, account: AccountSecret): string {
  const salt = randomBytes(16)
  return `${salt.toString('base64url')}.${new TokenCipher(secret, salt).encrypt(JSON.stringify(account), id)}`
}

/** The account, or undefined when it was not sealed with this secret for this id (or is damaged). */
export function openAccount (secret: string, id: string, sealed: string): AccountSecret | undefined {
  const dot = sealed.indexOf('.')
  if (dot <= 0) return undefined
  const plain = new TokenCipher(secret, Buffer.from(sealed.slice(0, dot), 'base64url')).decrypt(sealed.slice(dot + 1), id)
  if (plain === undefined) return undefined
  try {
    const v = JSON.parse(plain) as Record<string, unknown>
    const proxy = typeof v.proxyUrl === 'string' ? { proxyUrl: v.proxyUrl } : {}
    if (typeof v.cookie === 'string') return { cookie: v.cookie, ...proxy }
    if (typeof v.email === 'string' && typeof v.password === 'string') return { email: v.email, password: v.password, ...proxy }
  } catch {}
  return undefined
}
