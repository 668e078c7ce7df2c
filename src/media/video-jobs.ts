/**
 * Video jobs of the OpenAI Videos API (`/v1/videos`): what a job remembers (its identity and
 * upstream task id, the request, its state) in a small interface that the shared store backs too
 * (`src/store/redis/video-jobs.ts`), and the in-memory implementation: bounded, entries dropped
 * after a TTL. A job only moves forward (`jobRank`): a write that would take it back (a stale
 * `in_progress` after a `completed`, from a concurrent poll) is refused and the stored job wins.
 */
import type { VideoTaskRef } from './generate.js'

export type VideoJobStatus = 'queued' | 'in_progress' | 'completed' | 'failed'

export interface VideoJob {
  id: string
  model: string
  prompt: string
  size: string
  seconds: string
  createdAt: number
  completedAt: number | null
  status: VideoJobStatus
  progress: number
  error: { code: string; message: string } | null
  ref: VideoTaskRef
  /** The finished video's upstream URL. */
  url?: string
  /** Client mode: which caller's credentials own the task (a hash, never the credential). */
  owner?: string
}

export interface VideoJobStore {
  get: (id: string) => Promise<VideoJob | undefined>
  /**
   * Store `job` unless the stored one is further along (see `jobRank`); the job as stored now:
   * `job`, or the one that won.
   */
  set: (job: VideoJob) => Promise<VideoJob>
}

/** A finished job's rank: nothing replaces it, not even another finished state. */
export const FINAL_RANK = 1000

/** How far a job is: queued 0, running 1 + progress, finished `FINAL_RANK`. */
export function jobRank (j: Pick<VideoJob, 'status' | 'progress'>): number {
  if (j.status === 'completed' || j.status === 'failed') return FINAL_RANK
  if (j.status === 'queued') return 0
  const p = Number.isFinite(j.progress) ? Math.floor(j.progress) : 0
  return 1 + Math.max(0, Math.min(100, p))
}

/** Whether a job of rank `next` may replace a stored one of rank `stored`. */
export function replaces (next: number, stored: number): boolean {
  return next > stored || (next === stored && stored < FINAL_RANK)
}

export class MemoryVideoJobStore implements VideoJobStore {
  private readonly jobs = new Map<string, { job: VideoJob; expiresAt: number }>()

  constructor (private readonly o: { ttlMs: number; maxEntries: number; now: () => number }) {}

  async get (id: string): Promise<VideoJob | undefined> {
    return this.read(id)
  }

  async set (job: VideoJob): Promise<VideoJob> {
    const old = this.read(job.id)
    if (old && !replaces(jobRank(job), jobRank(old))) return old
    this.jobs.delete(job.id)
    this.jobs.set(job.id, { job, expiresAt: this.o.now() + this.o.ttlMs })
    for (const k of this.jobs.keys()) {
      if (this.jobs.size <= this.o.maxEntries) break
      this.jobs.delete(k)
    }
    return job
  }

  private read (id: string): VideoJob | undefined {
    const e = this.jobs.get(id)
    if (!e) return undefined
    if (e.expiresAt <= this.o.now()) {
      this.jobs.delete(id)
      return undefined
    }
    return e.job
  }
}

/** What a shared job store seals jobs with (`TokenCipher` with `STATE_SECRET`). */
export interface JobSealer {
  encrypt: (plain: string, aad?: string) => string
  /** Undefined when `sealed` was not sealed with this key (and this `aad`). */
  decrypt: (sealed: string, aad?: string) => string | undefined
}

/**
 * The video jobs part of a shared store (`qwenStore.videoJobs`): `open` gives the job store over
 * it, jobs sealed with `sealer` (no prompt, upstream URL or proxy in clear), `local` serving while
 * the shared side is unreachable, each job kept `ttlMs` after its last change.
 */
export interface SharedVideoJobs {
  open: (o: { sealer: JobSealer; local: VideoJobStore; ttlMs: number }) => VideoJobStore
}
