// @ts-check
/** Small formatting helpers. */

/** @param {number | null | undefined} ms */
export function duration (ms) {
  if (ms === null || ms === undefined) return '—'
  if (ms <= 0) return '0 s'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

/** @param {number | null | undefined} n */
export function num (n) {
  if (n === null || n === undefined) return '—'
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`
  return String(Math.round(n))
}

/** @param {number} t */
export function clock (t) {
  return new Date(t).toISOString().slice(11, 19)
}

/** @param {number[]} xs @param {number} p */
export function percentile (xs, p) {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
