/**
 * Video jobs of the OpenAI Videos API (`/v1/videos`): what a job remembers (its identity and
 * upstream task id, the request, its state) in a small interface a later issue backs with the
 * shared store, and the in-memory implementation: bounded, entries dropped after a TTL.
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
  get: (id: string) => VideoJob | undefined
  set: (job: VideoJob) => void
}

export class MemoryVideoJobStore implements VideoJobStore {
  private readonly jobs = new Map<string, { job: VideoJob; expiresAt: number }>()

  constructor (private readonly o: { ttlMs: number; maxEntries: number; now: () => number }) {}

  get (id: string): VideoJob | undefined {
    const e = this.jobs.get(id)
    if (!e) return undefined
    if (e.expiresAt <= this.o.now()) {
      this.jobs.delete(id)
      return undefined
    }
    return e.job
  }

  set (job: VideoJob): void {
    this.jobs.delete(job.id)
    this.jobs.set(job.id, { job, expiresAt: this.o.now() + this.o.ttlMs })
    for (const k of this.jobs.keys()) {
      if (this.jobs.size <= this.o.maxEntries) break
      this.jobs.delete(k)
    }
  }
}
