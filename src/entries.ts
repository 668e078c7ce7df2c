/** Configured account entries: the optional per-entry proxy suffix and `email:password` pairs. */

/**
 * An entry may name its own outbound proxy: `<cookie or email:password>@proxy=http://host:port`.
 * Returns the entry without the suffix and the proxy URL. Only http(s) proxies; anything else stays
 * part of the entry.
 */
export function splitProxy (entry: string): { value: string; proxyUrl?: string } {
  const m = /^(.*?)\s*@proxy=(https?:\/\/\S+)\s*$/s.exec(entry)
  return m ? { value: m[1]!.trim(), proxyUrl: m[2]! } : { value: entry.trim() }
}

/** `email:password` (the password may contain `:`). */
export function splitAccount (entry: string): { email: string; password: string } | undefined {
  const k = entry.indexOf(':')
  if (k <= 0 || k === entry.length - 1) return undefined
  return { email: entry.slice(0, k).trim(), password: entry.slice(k + 1) }
}
