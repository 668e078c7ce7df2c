/** Unverified JWT payload decoding: the gateway only needs the account id and the expiry. */

export interface JwtInfo {
  /** Account (user) id from the payload, if any. */
  id?: string
  /** Expiry in milliseconds since the epoch, if the payload has `exp`. */
  expiresAt?: number
}

export function decodeJwt (token: string): JwtInfo | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || !parts[1]) return undefined
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>
    if (!payload || typeof payload !== 'object') return undefined
    const info: JwtInfo = {}
    if (typeof payload.id === 'string') info.id = payload.id
    if (typeof payload.exp === 'number' && Number.isFinite(payload.exp)) info.expiresAt = payload.exp * 1000
    return info
  } catch {
    return undefined
  }
}

/** A token without a decodable `exp` counts as expired, as in the original project. */
export function tokenExpiry (token: string | undefined): number | undefined {
  return token ? decodeJwt(token)?.expiresAt : undefined
}

/** "7 days", "5 hours 3 minutes", "12 minutes", "expired". */
export function formatRemaining (ms: number): string {
  if (ms <= 0) return 'expired'
  const minutes = Math.floor(ms / 60_000)
  const days = Math.floor(minutes / 1440)
  const hours = Math.floor((minutes % 1440) / 60)
  const mins = minutes % 60
  const unit = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`
  if (days > 0) return hours > 0 ? `${unit(days, 'day')} ${unit(hours, 'hour')}` : unit(days, 'day')
  if (hours > 0) return mins > 0 ? `${unit(hours, 'hour')} ${unit(mins, 'minute')}` : unit(hours, 'hour')
  return unit(mins, 'minute')
}

/** Mask a secret for logs and /health: a short prefix and the length, never the value. */
export function mask (secret: string, keep = 6): string {
  if (secret.length <= keep + 2) return '***'
  return `${secret.slice(0, keep)}…(${secret.length})`
}
