/**
 * Exactly one half-open trial across replicas, end to end: two gateway processes, one simulator,
 * one redis-server. An account degraded by three upstream 500s cools down briefly; the moment the
 * cooldown ends, concurrent requests reach both replicas, and the simulator's request log (the
 * oracle) shows one request on that account until its trial answered; after the trial succeeded
 * both replicas use the account again. Timing is never tight: every wait is on a condition, and
 * the trial's answer is held long enough for the bursts to be sent and logged meanwhile.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { SimLogEntry } from '../src/simulator/index.js'
import { startRedis } from './helpers/redis.js'
import { chat, completions, idOf, startReplica, until, type Replica } from './helpers/replicas.js'
import { startSim } from './helpers/setup.js'
import { skipWithout } from './helpers/system.js'

const skip = skipWithout('redis-server', 'redis-server')
/** The breaker cooldown of a degraded account (BREAKER_DEGRADED_COOLDOWN_MS). */
const COOLDOWN_MS = 1500
/** How long the upstream holds the trial's answer: the bursts below run meanwhile. */
const TRIAL_HOLD_MS = 8000
/** Concurrent requests per replica in each burst. */
const BURST = 6

interface IdentityDetail { id: string; state: string; cooldownUntil: string | null }
interface HealthDetail { identities: IdentityDetail[]; counters: { trials: number } }

async function health (r: Replica): Promise<HealthDetail> {
  const res = await fetch(`${r.url}/health`)
  if (res.status !== 200) throw new Error(`/health answered ${res.status}`)
  return await res.json() as HealthDetail
}

async function identity (r: Replica, id: string): Promise<IdentityDetail> {
  const i = (await health(r)).identities.find((x) => x.id === id)
  if (!i) throw new Error(`no identity ${id} in /health`)
  return i
}

/** A replica that lost Redis for a moment (a command slower than the timeout on a loaded machine) decides alone meanwhile. */
const degradedSince = (r: Replica, mark: number): boolean => r.out().slice(mark).includes('degraded-local')

t.test('one half-open trial across two replicas, then both use the account again', { skip }, async (t) => {
  const sim = await startSim(t, { demoAccounts: 3 })
  const redis = await startRedis(t)
  const ns = randomUUID()
  const env = { BREAKER_DEGRADED_COOLDOWN_MS: String(COOLDOWN_MS), READY_CHATS_PER_IDENTITY: '0' }
  const [a, b] = await Promise.all([startReplica(t, sim, redis, ns, 'trial-a', env), startReplica(t, sim, redis, ns, 'trial-b', env)])
  const x = sim.accounts[0]!
  const xid = idOf(x.id)
  const onX = (log: SimLogEntry[]): SimLogEntry[] => completions(log).filter((e) => e.account === x.email)

  /** Degrade X, let its cooldown end, send two bursts at both replicas while its trial is held; X healthy again at the end. */
  const round = async (n: number): Promise<{ during: SimLogEntry[]; results: number[]; trials: number; clean: boolean }> => {
    const marks = [a.out().length, b.out().length]
    const trialsBefore = (await health(a)).counters.trials + (await health(b)).counters.trials
    // Three upstream 500s on X, through both replicas in turn (each request fails over and answers 200).
    sim.clearLog()
    sim.queue(x.email, { fail: { status: 500 } }, { fail: { status: 500 } }, { fail: { status: 500 } })
    for (let k = 0; k < 30 && onX(sim.log()).length < 3; k++) {
      t.equal((await chat(k % 2 ? b : a, [{ role: 'user', content: `degrade ${n}.${k}` }])).status, 200, `request ${k} failed over`)
    }
    t.same(onX(sim.log()).map((e) => e.status), [500, 500, 500], 'X met three upstream 500s')
    for (const r of [a, b]) {
      await until(async () => (await identity(r, xid)).state === 'degraded' ? true : undefined, 20_000, 'X degraded on both replicas')
    }
    t.pass('both replicas see X degraded (the shared breaker)')

    // The trial's answer is held; everything else answers at once.
    sim.queue(x.email, { firstByteDelayMs: TRIAL_HOLD_MS })
    sim.clearLog()
    // The cooldown ends (Redis's clock, the same machine's): fire at both replicas at once.
    const ends = Date.parse((await identity(a, xid)).cooldownUntil ?? new Date(0).toISOString())
    await new Promise((r) => setTimeout(r, Math.max(0, ends - Date.now()) + 20))
    const burst = (k0: number): Array<Promise<{ status: number }>> => Array.from({ length: 2 * BURST }, async (_, k) => await chat(k % 2 ? b : a, [{ role: 'user', content: `burst ${n}.${k0 + k}` }]))
    const first = burst(0)
    // Every request of the burst reached the upstream (the trial one is being held there).
    await until(() => completions(sim.log()).length >= 2 * BURST ? true : undefined, 30_000, 'the first burst upstream')
    const second = burst(2 * BURST)
    await until(() => completions(sim.log()).length >= 4 * BURST ? true : undefined, 30_000, 'the second burst upstream')
    const during = sim.log()
    const results = (await Promise.all([...first, ...second])).map((r) => r.status)
    const trials = (await health(a)).counters.trials + (await health(b)).counters.trials - trialsBefore
    for (const r of [a, b]) {
      await until(async () => (await identity(r, xid)).state === 'healthy' ? true : undefined, 20_000, 'X healthy on both replicas')
    }
    return { during, results, trials, clean: !degradedSince(a, marks[0]!) && !degradedSince(b, marks[1]!) }
  }

  // A round during which a replica fell back to its local store proves nothing about sharing: run another.
  let r = await round(1)
  for (let n = 2; !r.clean && n <= 3; n++) {
    t.comment(`round ${n - 1}: a replica served from local state for a moment (loaded machine); running round ${n}`)
    r = await round(n)
  }
  t.ok(r.clean, 'both replicas shared Redis throughout the round')
  const trial = onX(r.during)
  t.equal(trial.length, 1, 'exactly one request reached X while its trial ran, from either replica')
  t.equal(trial[0]?.closed, false, 'the trial was still being answered when both bursts had been sent')
  t.equal(completions(r.during).length, 4 * BURST, 'no request was sent twice')
  t.same(r.results, Array(4 * BURST).fill(200), 'every request answered 200, the trial too')
  t.equal(r.trials, 1, 'one trial in all, counted by the replica that ran it')
  t.equal(onX(sim.log()).length, 1, 'still one request on X once everything answered')

  // The trial succeeded: X is healthy on both replicas (waited for above), and each of them sends to it again.
  for (const rep of [a, b]) {
    sim.clearLog()
    // The shared cursor sends any 3 consecutive requests to the 3 accounts.
    for (let k = 0; k < 3; k++) t.equal((await chat(rep, [{ role: 'user', content: `after ${k}` }])).status, 200)
    t.equal(onX(sim.log()).length, 1, `${rep === a ? 'A' : 'B'} sends to X again (one of three)`)
    t.equal(new Set(completions(sim.log()).map((e) => e.account)).size, 3, 'three requests, three accounts')
  }
})
