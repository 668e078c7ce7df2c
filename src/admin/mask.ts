/** Labels the dashboard may show: never a key, cookie, token or password; e-mails as `a***@example.com`. */
import type { Identity } from '../pool.js'

/** `alice@example.com` → `a***@example.com`; anything without a domain → `***`. */
export function maskEmail (email: string): string {
  const at = email.lastIndexOf('@')
  if (at <= 0 || at === email.length - 1) return '***'
  return `${email[0]}***${email.slice(at)}`
}

/** The identity as the operator sees it: its id and where it came from, a masked e-mail for sign-in accounts. */
export function adminLabel (i: Identity, runtime: boolean): string {
  const what = /^\S+ \((.*)\)$/.exec(i.label)?.[1] ?? i.kind
  // A sign-in account's configured label ends in a masked e-mail of its own: keep only where it came from.
  const origin = runtime ? 'runtime' : i.email !== undefined ? what.replace(/ \S+$/, '') : what
  return i.email !== undefined ? `${maskEmail(i.email)} (${origin})` : `${i.id} (${origin})`
}
