/**
 * The OpenAI Videos API over video jobs: create (the upstream task is created before answering, so
 * refusals are HTTP statuses), retrieve (one status check of a running job, with its identity's
 * credentials), and the finished video's URL for `/content`. No background timers: a job advances
 * when it is asked about (through any replica, when the job store is shared), and fails once `VIDEO_TIMEOUT_MS` has passed since its creation.
 */
import { createHash, randomBytes } from 'node:crypto'
import { GatewayError, InvalidRequestError, UpstreamError, toOpenAIError } from '../errors.js'
import type { ModelCatalog } from '../models.js'
import type { Caller } from '../turn/lease.js'
import type { Attachment } from './attachment.js'
import { ratioOf } from './generate-chat.js'
import { mediaModel } from './generate-images.js'
import type { MediaGenerator } from './generate.js'
import type { VideoJob, VideoJobStore } from './video-jobs.js'

export interface VideoApiDeps {
  gen: MediaGenerator
  models: ModelCatalog
  jobs: VideoJobStore
  now: () => number
  videoTimeoutMs: number
}

export interface CreateVideo {
  caller: Caller
  /** The API key's name (pool callers): only that key sees the job. */
  keyName?: string | null
  prompt: string | undefined
  model: string | undefined
  size: string | undefined
  seconds: string | undefined
  reference: Attachment | undefined
  requestId: string
  signal: AbortSignal
}

/** The OpenAI `Video` object. */
export interface OpenAIVideo { id: string; object: 'video'; status: string; [k: string]: unknown }

export function videoObject (j: VideoJob): OpenAIVideo {
  return {
    id: j.id, object: 'video', status: j.status, progress: j.progress, model: j.model, prompt: j.prompt, size: j.size, seconds: j.seconds,
    created_at: Math.floor(j.createdAt / 1000), completed_at: j.completedAt === null ? null : Math.floor(j.completedAt / 1000),
    expires_at: null, error: j.error, remixed_from_video_id: null,
  }
}

/**
 * Who may see a job: a hash of a client-mode caller's credential; for pool callers the API key's
 * name (one key never sees another's jobs); on an open gateway, everyone.
 */
function ownerOf (caller: Caller, keyName?: string | null): string | undefined {
  if (caller.kind !== 'client') return keyName ? `key:${keyName}` : undefined
  return createHash('sha256').update(caller.cookie ?? caller.token ?? '').digest('hex').slice(0, 32)
}

export function videoNotFound (id: string): GatewayError {
  return new GatewayError(`No video job \`${id.slice(0, 80)}\` (jobs are kept for a day)`, { status: 404, type: 'invalid_request_error', code: 'video_not_found', param: 'video_id' })
}

export class VideoApi {
  constructor (private readonly d: VideoApiDeps) {}

  async create (r: CreateVideo): Promise<VideoJob> {
    if (!r.prompt?.trim()) throw new InvalidRequestError('prompt is required', 'prompt')
    const seconds = r.seconds ?? '4'
    if (!/^\d{1,3}$/.test(seconds)) throw new InvalidRequestError('seconds must be a whole number of seconds, e.g. "4"', 'seconds')
    const size = r.size ?? '1280x720'
    const ratio = ratioOf(size)
    const model = await mediaModel(this.d.models, r.model, 'video', r.signal)
    const ref = await this.d.gen.startVideo({
      caller: r.caller, model: model.base, prompt: r.prompt, size: ratio, attachments: r.reference ? [r.reference] : [], requestId: r.requestId, signal: r.signal,
    })
    const owner = ownerOf(r.caller, r.keyName)
    const job: VideoJob = {
      id: `video_${randomBytes(16).toString('hex')}`, model: model.requested, prompt: r.prompt, size, seconds, createdAt: this.d.now(), completedAt: null,
      status: 'in_progress', progress: 0, error: null, ref, ...(owner ? { owner } : {}),
    }
    return await this.d.jobs.set(job)
  }

  /** The job, advanced by one status check while it runs. */
  async retrieve (id: string, caller: Caller, signal: AbortSignal, keyName?: string | null): Promise<VideoJob> {
    const job = await this.d.jobs.get(id)
    if (!job || job.owner !== ownerOf(caller, keyName)) throw videoNotFound(id)
    if (job.status === 'completed' || job.status === 'failed') return job
    const now = this.d.now()
    if (now - job.createdAt >= this.d.videoTimeoutMs) {
      return await this.finish(job, { status: 'failed', error: { code: 'upstream_timeout', message: 'The video was not ready within VIDEO_TIMEOUT_MS' } })
    }
    let s
    try {
      s = await this.d.gen.videoStatus(job.ref, caller, signal)
    } catch (err) {
      // A failed status check leaves the job running (the next retrieve asks again), unless the task is gone.
      if (err instanceof UpstreamError && err.kind === 'bad_request' && /not find|not found/i.test(err.message)) {
        return await this.finish(job, { status: 'failed', error: { code: 'upstream_error', message: 'The upstream no longer knows the task' } })
      }
      throw err
    }
    if (s.state === 'success') return await this.finish(job, { status: 'completed', progress: 100, url: s.url! })
    if (s.state === 'failed') {
      const { body } = toOpenAIError(new UpstreamError('upstream_error', `The upstream video generation failed${s.message ? `: ${s.message}` : ''}`))
      return await this.finish(job, { status: 'failed', error: { code: 'video_generation_failed', message: body.error.message } })
    }
    const next = { ...job, progress: Math.max(job.progress, s.progress ?? job.progress) }
    // Another replica may have polled meanwhile: the store keeps whichever is further along.
    return await this.d.jobs.set(next)
  }

  private async finish (job: VideoJob, change: Partial<VideoJob>): Promise<VideoJob> {
    return await this.d.jobs.set({ ...job, ...change, completedAt: this.d.now() })
  }
}
