/**
 * Video jobs in Redis, so that a job created through one replica is retrieved, polled and
 * downloaded through any other. One key per job (`PX` = the job TTL, renewed on each change)
 * holding `<rank>:<sealed job>`: the whole job is sealed (`STATE_SECRET`, bound to the job id), so
 * neither the prompt nor the upstream URL, proxy or owner hash is in Redis in clear; only the rank
 * is, for the compare-on-write script: a job moves forward only, so concurrent polls from two
 * replicas never take a finished job back to running (the stored job wins and is returned).
 * Each replica also keeps a bounded local copy of the jobs it created or served: while the breaker
 * is open they still answer (a job it never saw answers a retryable 503, not a 404), and a change
 * made meanwhile goes to Redis when the job is next read or changed.
 */
import type { Breaker } from '../breaker.js'
import { GatewayError } from '../../errors.js'
import { FINAL_RANK, jobRank, type JobSealer, type SharedVideoJobs, type VideoJob, type VideoJobStore } from '../../media/video-jobs.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

/** A job looked up while Redis is away and not known here: retry, it is not gone. */
function storeUnavailable (): GatewayError {
  return new GatewayError('Video jobs are shared between replicas and the shared store does not answer right now; retry shortly', { status: 503, type: 'server_error', code: 'store_unavailable', headers: { 'retry-after': '5' } })
}

/**
 * JOB_PUT  KEYS: job   ARGV: rank, final rank, value, ttl ms → nil when written, else the stored
 * value that is further along (a higher rank, or a finished one).
 */
const JOB_PUT = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local r = tonumber(string.match(cur, '^(%d+):'))
  local n = tonumber(ARGV[1])
  if r and (r > n or (r == n and r >= tonumber(ARGV[2]))) then return cur end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return false`

const COMMAND = 'qgVideoJobPut'

type PutCommand = (key: string, rank: number, final: number, value: string, ttlMs: number) => Promise<string | null>

export class RedisVideoJobs implements SharedVideoJobs {
  constructor (private readonly c: ScriptClient, private readonly keys: Keys, private readonly breaker: Breaker) {
    const r = c.redis as unknown as Record<string, unknown>
    if (typeof r[COMMAND] !== 'function') c.redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: JOB_PUT })
  }

  open (o: { sealer: JobSealer; local: VideoJobStore; ttlMs: number }): VideoJobStore {
    return new RedisVideoJobStore(this.c, this.keys, this.breaker, o)
  }
}

class RedisVideoJobStore implements VideoJobStore {
  private readonly put: PutCommand

  constructor (
    private readonly c: ScriptClient,
    private readonly keys: Keys,
    private readonly breaker: Breaker,
    private readonly o: { sealer: JobSealer; local: VideoJobStore; ttlMs: number },
  ) {
    const fn = (c.redis as unknown as Record<string, PutCommand>)[COMMAND]!
    this.put = fn.bind(c.redis)
  }

  async get (id: string): Promise<VideoJob | undefined> {
    let reached = true
    const shared = await this.breaker.run(async () => {
      const raw = await this.c.redis.get(this.keys.videoJob(id))
      return raw === null ? undefined : this.unseal(id, raw)
    }, () => { reached = false; return undefined })
    const local = await this.o.local.get(id)
    // The local copy is further along (a change made while Redis was away): it goes to Redis now.
    if (local && (!shared || jobRank(local) > jobRank(shared))) return reached ? await this.set(local) : local
    if (shared) {
      await this.o.local.set(shared)
      return shared
    }
    // Redis did not answer and this replica has never seen the job: it may well exist.
    if (!reached) throw storeUnavailable()
    return undefined
  }

  async set (job: VideoJob): Promise<VideoJob> {
    const kept = await this.breaker.run(async () => {
      const rank = jobRank(job)
      const stored = await this.put(this.keys.videoJob(job.id), rank, FINAL_RANK, `${rank}:${this.o.sealer.encrypt(JSON.stringify(job), job.id)}`, this.o.ttlMs)
      if (stored === null) return job
      return this.unseal(job.id, stored) ?? job
    }, () => job)
    // A copy here too (bounded), so that the jobs this replica created or served still answer while Redis is away.
    return await this.o.local.set(kept)
  }

  /** The job in a stored value; undefined when it does not open (sealed with another STATE_SECRET). */
  private unseal (id: string, raw: string): VideoJob | undefined {
    const plain = this.o.sealer.decrypt(raw.slice(raw.indexOf(':') + 1), id)
    return plain === undefined ? undefined : JSON.parse(plain) as VideoJob
  }
}
