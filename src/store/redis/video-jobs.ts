/**
 * Video jobs in Redis, so that a job created through one replica is retrieved, polled and
 * downloaded through any other. One key per job (`PX` = the job TTL, renewed on each change)
 * holding `<rank>:<sealed job>`: the whole job is sealed (`STATE_SECRET`, bound to the job id), so
 * neither the prompt nor the upstream URL, proxy or owner hash is in Redis in clear; only the rank
 * is, for the compare-on-write script: a job moves forward only, so concurrent polls from two
 * replicas never take a finished job back to running (the stored job wins and is returned).
 * While the breaker is open the local memory store serves; a job it holds is still found (and
 * written to Redis at its next change) once Redis is back.
 */
import type { Breaker } from '../breaker.js'
import { FINAL_RANK, jobRank, type JobSealer, type SharedVideoJobs, type VideoJob, type VideoJobStore } from '../../media/video-jobs.js'
import type { Keys } from './keys.js'
import type { ScriptClient } from './scripts.js'

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
    const shared = await this.breaker.run(async () => {
      const raw = await this.c.redis.get(this.keys.videoJob(id))
      return raw === null ? undefined : this.unseal(id, raw)
    }, () => undefined)
    // Not (or no longer) in Redis: one created here while Redis was away.
    return shared ?? await this.o.local.get(id)
  }

  async set (job: VideoJob): Promise<VideoJob> {
    return await this.breaker.run(async () => {
      const rank = jobRank(job)
      const stored = await this.put(this.keys.videoJob(job.id), rank, FINAL_RANK, `${rank}:${this.o.sealer.encrypt(JSON.stringify(job), job.id)}`, this.o.ttlMs)
      if (stored === null) return job
      return this.unseal(job.id, stored) ?? job
    }, async () => await this.o.local.set(job))
  }

  /** The job in a stored value; undefined when it does not open (sealed with another STATE_SECRET). */
  private unseal (id: string, raw: string): VideoJob | undefined {
    const plain = this.o.sealer.decrypt(raw.slice(raw.indexOf(':') + 1), id)
    return plain === undefined ? undefined : JSON.parse(plain) as VideoJob
  }
}
