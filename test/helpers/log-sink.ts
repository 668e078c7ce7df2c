/** A pino destination that keeps every log line, raw and parsed, and a poll helper. */
import { Writable } from 'node:stream'

export interface LogLine { reqId?: string; requestId?: string; msg?: string; [k: string]: unknown }

export function logSink () {
  const raw: string[] = []
  let partial = ''
  const stream = new Writable({
    write (chunk, _enc, cb) {
      const text = partial + String(chunk)
      const lines = text.split('\n')
      partial = lines.pop() ?? ''
      raw.push(...lines.filter((l) => l.length > 0))
      cb()
    },
  })
  return { stream, raw, lines: (): LogLine[] => raw.map((l) => JSON.parse(l) as LogLine) }
}

/** Wait until `cond()` holds (polling every 5 ms), or throw after `ms`. */
export async function until (cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
