/**
 * Waiting for a video task: poll its status with backoff until it succeeds, fails, or the signal
 * (the request's or job's `VIDEO_TIMEOUT_MS` budget, the client leaving) ends the wait. Progress
 * reported by the upstream is passed on as it changes. Framework-free; every timer is cleared.
 */
import { UpstreamError } from '../errors.js'
import type { TaskStatus } from '../upstream/media.js'

export interface PollOptions {
  signal: AbortSignal
  /** First wait between two status checks; each next one is 1.5× longer, up to `maxIntervalMs`. */
  intervalMs: number
  maxIntervalMs?: number
  /** Called when a running task reports a new progress value or message. */
  onProgress?: (s: TaskStatus) => void
}

/** A failed video task: an honest upstream error, never a made-up result. */
export function videoFailed (message: string | undefined): UpstreamError {
  return new UpstreamError('upstream_error', `The upstream video generation failed${message ? `: ${message}` : ''}`, { requestCaused: true })
}

/** Sleep `ms`, or reject with the signal's reason when it aborts first. */
export function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(signal.reason) }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Poll until the task is done; its URL. A failed task throws `videoFailed`. */
export async function pollVideo (status: (signal: AbortSignal) => Promise<TaskStatus>, o: PollOptions): Promise<string> {
  const max = o.maxIntervalMs ?? 20_000
  let wait = o.intervalMs
  let last = ''
  for (;;) {
    const s = await status(o.signal)
    if (s.state === 'success') return s.url!
    if (s.state === 'failed') throw videoFailed(s.message)
    const seen = `${s.progress ?? ''}|${s.message ?? ''}`
    if (seen !== last && (s.progress !== undefined || s.message)) {
      last = seen
      o.onProgress?.(s)
    }
    await sleep(wait, o.signal)
    wait = Math.min(max, Math.round(wait * 1.5))
  }
}
