/**
 * Which addresses the gateway may fetch media from. Everything that is not a public unicast address
 * is forbidden (loopback, private, link-local, CGNAT, multicast, unspecified, reserved and
 * documentation ranges, and their IPv6 equivalents, including IPv4 addresses embedded in IPv6),
 * unless the operator allows it by host name or CIDR (`MEDIA_FETCH_ALLOW`).
 */
import { isIP } from 'node:net'

/** An address as bytes (4 for IPv4, 16 for IPv6). */
type Bytes = readonly number[]

interface Cidr { bytes: Bytes; bits: number }

/** Dotted quad to bytes; the text has been checked by `isIP`. */
function parseV4 (s: string): number[] {
  return s.split('.').map(Number)
}

/** IPv6 text (checked by `isIP`, zone removed) to 16 bytes. */
function parseV6 (s: string): number[] {
  let text = s.toLowerCase()
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.', lastColon)) {
    // A trailing dotted quad (`::ffff:1.2.3.4`) is two 16-bit groups.
    const v4 = parseV4(text.slice(lastColon + 1))
    text = `${text.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const [head, tail] = text.split('::').map((h) => (h === '' ? [] : h.split(':').map((x) => parseInt(x, 16))))
  const words = tail === undefined ? head! : [...head!, ...new Array<number>(8 - head!.length - tail.length).fill(0), ...tail]
  return words.flatMap((w) => [w >> 8, w & 0xff])
}

/** Parse an IPv4 or IPv6 address (IPv6 may carry a zone); `undefined` when it is neither. */
export function parseIp (s: string): Bytes | undefined {
  const text = s.replace(/%.*$/, '')
  const kind = isIP(text)
  if (kind === 0) return undefined
  return kind === 4 ? parseV4(text) : parseV6(text)
}

function cidr (text: string): Cidr {
  const [addr, bits] = text.split('/') as [string, string]
  const bytes = parseIp(addr)!
  return { bytes, bits: Number(bits) }
}

function inCidr (ip: Bytes, c: Cidr): boolean {
  if (ip.length !== c.bytes.length) return false
  for (let i = 0; i < c.bits; i++) {
    const mask = 0x80 >> (i % 8)
    if ((ip[i >> 3]! & mask) !== (c.bytes[i >> 3]! & mask)) return false
  }
  return true
}

const V4_FORBIDDEN: ReadonlyArray<[Cidr, string]> = ([
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'CGNAT'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved (6to4 relay anycast)'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
] as const).map(([c, why]) => [cidr(c), why])

const V6_FORBIDDEN: ReadonlyArray<[Cidr, string]> = ([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['100::/64', 'reserved'],
  // Teredo carries an obfuscated IPv4 address; nothing a media URL needs.
  ['2001::/32', 'reserved (Teredo)'],
  ['2001:db8::/32', 'documentation'],
  ['fc00::/7', 'private (ULA)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
] as const).map(([c, why]) => [cidr(c), why])

/** IPv6 ranges that carry an IPv4 address: it is checked as IPv4. `at` is its first byte. */
const V6_EMBEDDING: ReadonlyArray<[Cidr, number]> = ([
  ['::ffff:0:0/96', 12], // IPv4-mapped
  ['::/96', 12], // IPv4-compatible (deprecated)
  ['64:ff9b::/96', 12], // NAT64
  ['2002::/16', 2], // 6to4
] as const).map(([c, at]) => [cidr(c), at])

/**
 * Why `ip` must not be fetched from (`'loopback'`, `'private'`, …), or `undefined` for a public
 * address. Text that is not an IP address is refused as `'not an IP address'`.
 */
export function forbiddenReason (ip: string): string | undefined {
  const bytes = parseIp(ip)
  if (!bytes) return 'not an IP address'
  return forbiddenBytes(bytes)
}

function forbiddenBytes (bytes: Bytes): string | undefined {
  if (bytes.length === 4) return V4_FORBIDDEN.find(([c]) => inCidr(bytes, c))?.[1]
  const direct = V6_FORBIDDEN.find(([c]) => inCidr(bytes, c))?.[1]
  if (direct) return direct
  for (const [c, at] of V6_EMBEDDING) {
    if (inCidr(bytes, c)) {
      const v4 = forbiddenBytes(bytes.slice(at, at + 4))
      return v4 && `${v4} (IPv4 inside IPv6)`
    }
  }
  return undefined
}

/** Operator exceptions: host names (exact, or `*.example.com` for subdomains) and CIDRs or single addresses. */
export interface AllowList {
  hosts: readonly string[]
  cidrs: readonly Cidr[]
}

const HOST = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/

/**
 * Parse `MEDIA_FETCH_ALLOW` (a comma-separated string or a list). Throws naming the first entry
 * that is neither a host name nor an address nor a CIDR.
 */
export function parseAllowList (value: string | readonly string[]): AllowList {
  const entries = (typeof value === 'string' ? value.split(',') : value).map((e) => e.trim().toLowerCase()).filter(Boolean)
  const hosts: string[] = []
  const cidrs: Cidr[] = []
  for (const e of entries) {
    const slash = e.indexOf('/')
    const addr = e.replace(/^\[(.*)\]$/, '$1')
    const ip = parseIp(slash >= 0 ? e.slice(0, slash) : addr)
    if (ip) {
      const bits = slash >= 0 ? e.slice(slash + 1) : String(ip.length * 8)
      if (!/^\d{1,3}$/.test(bits) || Number(bits) > ip.length * 8) throw new Error(`\`${e}\` has an invalid prefix length`)
      cidrs.push({ bytes: ip, bits: Number(bits) })
    } else if (slash < 0 && HOST.test(e)) {
      hosts.push(e.replace(/\.$/, ''))
    } else {
      throw new Error(`\`${e}\` is neither a host name nor an IP address or CIDR`)
    }
  }
  return { hosts, cidrs }
}

/** The operator allowed connections to this host name (whatever it resolves to). */
export function hostAllowed (host: string, allow: AllowList): boolean {
  const h = host.toLowerCase().replace(/\.$/, '')
  return allow.hosts.some((a) => (a.startsWith('*.') ? h.endsWith(a.slice(1)) : h === a))
}

/** The operator allowed this address. */
export function addressAllowed (ip: string, allow: AllowList): boolean {
  const bytes = parseIp(ip)
  return bytes !== undefined && allow.cidrs.some((c) => inCidr(bytes, c))
}
