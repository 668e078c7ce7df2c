// @ts-check
/** The dashboard's talk with the gateway: the admin key in the Authorization header, never in a URL. */

const KEY = 'qwen-gateway-admin-key'

export const session = {
  /** @returns {string | null} */
  get key () { return sessionStorage.getItem(KEY) },
  /** @param {string} k */
  set (k) { sessionStorage.setItem(KEY, k) },
  clear () { sessionStorage.removeItem(KEY) },
}

/** Thrown when the key is refused: the page shows the login again. */
export class Unauthorized extends Error {}

/** @param {Record<string, string>} [extra] */
export function headers (extra = {}) {
  const k = session.key
  return k ? { ...extra, authorization: `Bearer ${k}` } : extra
}

/**
 * JSON from the admin API (paths relative to the page, so it works under any prefix).
 * @param {string} path @param {RequestInit} [init]
 */
export async function api (path, init = {}) {
  const res = await fetch(path, { ...init, headers: headers(/** @type {Record<string, string>} */ (init.headers ?? {})) })
  const body = await res.json().catch(() => ({}))
  if (res.status === 401) throw new Unauthorized(body?.error?.message ?? 'Wrong admin key')
  if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`)
  return body
}

/**
 * Reads `text/event-stream` from a fetch response, calling `onEvent(name, data)` per event.
 * @param {Response} res @param {(event: string, data: string) => void} onEvent
 */
export async function readSse (res, onEvent) {
  const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += value
    let cut
    while ((cut = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, cut)
      buf = buf.slice(cut + 2)
      let event = 'message'
      const data = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
        else if (line.startsWith('data:')) data.push(line.slice(5))
      }
      if (data.length) onEvent(event, data.join('\n'))
    }
  }
}

/**
 * The live stream: reconnects with backoff (1 s → 15 s) until stopped; a 401 calls `onUnauthorized`.
 * @param {{ onEvent: (event: string, data: string) => void, onStatus: (live: boolean) => void, onUnauthorized: () => void }} o
 */
export function live (o) {
  let stopped = false
  let delay = 1000
  /** @type {AbortController | undefined} */
  let ctl
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer
  const connect = async () => {
    ctl = new AbortController()
    try {
      const res = await fetch('api/events', { headers: headers(), signal: ctl.signal })
      if (res.status === 401) {
        stopped = true
        o.onUnauthorized()
        return
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      o.onStatus(true)
      delay = 1000
      await readSse(res, o.onEvent)
    } catch {
      // a closed or failed stream: try again below
    }
    o.onStatus(false)
    if (stopped) return
    timer = setTimeout(connect, delay)
    delay = Math.min(15_000, delay * 2)
  }
  void connect()
  return () => {
    stopped = true
    if (timer) clearTimeout(timer)
    ctl?.abort()
  }
}

/** The gateway's base URL: the page's URL without `admin/…`. */
export function gatewayBase () {
  const path = location.pathname.replace(/admin\/.*$/, '').replace(/\/$/, '')
  return `${location.origin}${path}`
}
