/** HS256 JWTs with the upstream's payload shape `{id, last_password_change, exp}` (protocol §1.2). */
import { createHmac, timingSafeEqual } from 'node:crypto'

export interface JwtPayload {
  id: string
  /** Unix seconds. The simulator uses it as the account's token generation (see `server.ts`). */
  last_password_change: number
  /** Unix seconds. */
  exp: number
}

const HEADER = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')

export interface JwtCodec {
  sign(payload: JwtPayload): string
  /** The payload when the signature is valid (expiry is the caller's business), else undefined. */
  verify(token: string): JwtPayload | undefined
}

export function jwtCodec (secret: string): JwtCodec {
  const mac = (data: string): Buffer => createHmac('sha256', secret).update(data).digest()
  return {
    sign ({ id, last_password_change, exp }) {
      const body = `${HEADER}.${Buffer.from(JSON.stringify({ id, last_password_change, exp })).toString('base64url')}`
      return `${body}.${mac(body).toString('base64url')}`
    },
    verify (token) {
      const a = token.indexOf('.')
      const b = token.indexOf('.', a + 1)
      if (a < 0 || b < 0 || token.indexOf('.', b + 1) >= 0) return undefined
      const sig = Buffer.from(token.slice(b + 1), 'base64url')
      const expected = mac(token.slice(0, b))
      if (sig.length !== expected.length || !timingSafeEqual(sig, expected)) return undefined
      try {
        const header = JSON.parse(Buffer.from(token.slice(0, a), 'base64url').toString()) as { alg?: unknown }
        const p = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString()) as Partial<JwtPayload>
        if (header.alg !== 'HS256' || typeof p.id !== 'string' || typeof p.exp !== 'number' ||
          typeof p.last_password_change !== 'number') return undefined
        return { id: p.id, last_password_change: p.last_password_change, exp: p.exp }
      } catch {
        return undefined
      }
    },
  }
}
