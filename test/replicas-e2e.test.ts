/**
 * Two gateway processes (`node dist/src/server.js`, as `npm start` runs it), one simulator, one
 * real redis-server: the simulator's request log is the oracle. `npm test` builds dist/ first.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { SimLogEntry } from '../src/simulator/index.js'
import { startRedis } from './helpers/redis.js'
import { chat, completions, ready, server, startReplica as start, until, type Replica } from './helpers/replicas.js'
import { postJson, startSim } from './helpers/setup.js'
import { skipWithout } from './helpers/system.js'
import { PNG } from './helpers/media-fixtures.js'

const AUTHS = '/api/v1/auths/'
const skip = skipWithout('redis-server', 'redis-server')

const chatOf = (e: SimLogEntry): string => (e.body as { chat_id: string }).chat_id

t.test('two replicas, one Redis', { skip }, async (t) => {
  const sim = await startSim(t)
  const n = sim.accounts.length
  const redis = await startRedis(t)
  const ns = randomUUID()
  const [a, b] = await Promise.all([start(t, sim, redis, ns, 'rep-a'), start(t, sim, redis, ns, 'rep-b')])
  const startLog = sim.log()
  t.same(await ready(a), { status: 'ready', mode: 'server', available: n, store: 'redis', replica: 'rep-a' })

  t.test('spread across accounts whichever replica a request reaches', async (t) => {
    sim.clearLog()
    const results = await Promise.all(Array.from({ length: 6 * n }, async (_, k) => await chat(k % 2 ? a : b, [{ role: 'user', content: `spread ${k}` }])))
    t.ok(results.every((r) => r.status === 200))
    const count: Record<string, number> = {}
    for (const e of completions(sim.log())) count[e.account!] = (count[e.account!] ?? 0) + 1
    t.same(Object.values(count), Array(n).fill(6), 'one shared cursor: 6 each')
  })

  t.test('one token fetch per account for both replicas, at start and after the token was revoked', async (t) => {
    const auths = (log: SimLogEntry[], email: string): number => log.filter((e) => e.path === AUTHS && e.account === email).length
    for (const acc of sim.accounts) t.equal(auths(startLog, acc.email), 1, `start-up: one token fetch for ${acc.email}, shared by both`)
    const victim = sim.accounts[1]!.email
    sim.clearLog()
    sim.revokeTokens(victim)
    const results = await Promise.all(Array.from({ length: 4 * n }, async (_, k) => await chat(k % 2 ? a : b, [{ role: 'user', content: `tok ${k}` }])))
    t.ok(results.every((r) => r.status === 200), 'every request answered')
    t.equal(auths(sim.log(), victim), 1, 'one refresh for the revoked token, though both replicas met it')
    const after = completions(sim.log()).filter((e) => e.account === victim && e.status === 200)
    t.ok(after.length > 0, 'the account serves again through both replicas')
  })

  t.test('the same image through both replicas is uploaded once per account', async (t) => {
    sim.clearLog()
    const image = [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } }] }]
    const send = async (r: Replica): Promise<number> => {
      const res = await postJson(`${r.url}/v1/chat/completions`, { model: 'qwen3-vl-plus', messages: image })
      await res.arrayBuffer()
      return res.status
    }
    t.equal(await send(a), 200)
    // The shared cursor takes the next n requests through every account once, the first one again.
    for (let k = 0; k < n; k++) t.equal(await send(b), 200)
    const sts = sim.log().filter((e) => e.path.endsWith('/files/getstsToken'))
    const per: Record<string, number> = {}
    for (const e of sts) per[e.account!] = (per[e.account!] ?? 0) + 1
    t.same(Object.values(per), Array(n).fill(1), 'one upload per account: B reused what A uploaded')
    t.equal(completions(sim.log()).length, n + 1)
  })

  t.test('a rate limit learned by one replica is respected by the other', async (t) => {
    const limited = sim.accounts[0]!.email
    sim.clearLog()
    sim.queue(limited, { fail: 'rate_limited', rateLimitHours: 1 })
    // Through A until the limited account met its 429 (round robin reaches it within n).
    for (let k = 0; k < n && !completions(sim.log()).some((e) => e.account === limited); k++) t.equal((await chat(a, [{ role: 'user', content: `rl ${k}` }])).status, 200)
    const hit = completions(sim.log()).find((e) => e.account === limited)
    t.ok(hit, 'the limited account met its rate limit once')
    for (let k = 0; k < 12; k++) t.equal((await chat(k % 2 ? a : b, [{ role: 'user', content: `after ${k}` }])).status, 200)
    const later = completions(sim.log()).filter((e) => e.seq > hit!.seq)
    t.equal(later.filter((e) => e.account === limited).length, 0, 'no further request to the limited account from either replica')
    t.ok(later.length >= 12, 'the failed-over attempt and the twelve requests went to the others')
  })

  t.test('turn 1 through A, turn 2 through B: the same upstream chat; concurrent turn 2s never share a chat', async (t) => {
    sim.clearLog()
    const first = [{ role: 'user', content: 'remember the word blue' }]
    const r1 = await chat(a, first)
    t.equal(r1.status, 200)
    const turn1 = completions(sim.log()).at(-1)!
    const second = [...first, { role: 'assistant', content: r1.content }, { role: 'user', content: 'which word?' }]
    const r2 = await chat(b, second)
    t.equal(r2.status, 200)
    const turn2 = completions(sim.log()).at(-1)!
    t.equal(chatOf(turn2), chatOf(turn1), 'B continued the chat A opened')
    t.equal((turn2.body as { messages: Array<{ content: string }> }).messages[0]!.content, 'which word?', 'only the new turn was sent')

    const other = [{ role: 'user', content: 'another conversation' }]
    const o1 = await chat(b, other)
    const next = [...other, { role: 'assistant', content: o1.content }, { role: 'user', content: 'go on' }]
    sim.clearLog()
    for (const acc of sim.accounts) sim.queue(acc.email, { frameDelayMs: 40 }, { frameDelayMs: 40 })
    const both = await Promise.all([chat(a, next), chat(b, next)])
    t.same(both.map((r) => r.status), [200, 200])
    const two = completions(sim.log())
    t.equal(two.length, 2)
    t.not(chatOf(two[0]!), chatOf(two[1]!), 'the second one branched to a new chat instead of generating in the locked one')
  })

  t.test('Redis killed, hung and restarted empty: requests keep working; shared again within 10 s', async (t) => {
    await redis.kill()
    const r = await chat(a, [{ role: 'user', content: 'during outage' }])
    t.equal(r.status, 200)
    const rb = await chat(b, [{ role: 'user', content: 'during outage b' }])
    t.equal(rb.status, 200)
    const rd = await fetch(`${a.url}/ready`)
    t.equal(rd.status, 200)
    t.match(await rd.json(), { status: 'ready', store: 'degraded-local' })
    t.match(await (await fetch(`${a.url}/metrics`)).text(), /qwen_store_mode\{mode="degraded-local",replica="rep-a"\} 1/)
    await redis.restart()
    const back = Date.now()
    await until(async () => (await ready(a)).store === 'redis' && (await ready(b)).store === 'redis' ? true : undefined, 10_000)
    t.ok(Date.now() - back <= 10_000, 'both replicas share state again within 10 s')

    redis.freeze()
    const started = Date.now()
    const frozen = await chat(b, [{ role: 'user', content: 'while frozen' }])
    t.equal(frozen.status, 200)
    t.ok(Date.now() - started < 5000, 'a hung Redis costs at most a command timeout')
    t.equal((await ready(b)).store, 'degraded-local')
    redis.thaw()
    await until(async () => (await ready(b)).store === 'redis' ? true : undefined, 10_000)
    t.pass('back after SIGCONT')
    // The cooldown learned before the restart was written back: the limited account stays unused.
    sim.clearLog()
    for (let k = 0; k < 6; k++) t.equal((await chat(k % 2 ? a : b, [{ role: 'user', content: `post ${k}` }])).status, 200)
    t.equal(completions(sim.log()).filter((e) => e.account === sim.accounts[0]!.email).length, 0)
  })
})

t.test('per-key limits are counted across replicas', { skip }, async (t) => {
  const sim = await startSim(t)
  const redis = await startRedis(t)
  const ns = randomUUID()
  const limits = { KEY_LIMITS: '{"anonymous":{"rpm":4}}' }
  const [a, b] = await Promise.all([start(t, sim, redis, ns, 'lim-a', limits), start(t, sim, redis, ns, 'lim-b', limits)])
  const statuses: number[] = []
  for (let k = 0; k < 6; k++) statuses.push((await chat(k % 2 ? a : b, [{ role: 'user', content: `limit ${k}` }])).status)
  t.same(statuses, [200, 200, 200, 200, 429, 429], '4 per minute in all, not 4 per replica')
  t.equal(completions(sim.log()).length, 4)
})

t.test('REDIS_URL without STATE_SECRET: refuses to start, naming the setting', { skip }, async (t) => {
  const child = spawn(process.execPath, [server], {
    cwd: mkdtempSync(join(tmpdir(), 'qg-rep-')), env: { PATH: process.env.PATH ?? '', PORT: '0', REDIS_URL: 'redis://127.0.0.1:9', COOKIE: 'token=x' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d) => { err += String(d) })
  const code = await new Promise((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.match(err, /STATE_SECRET/)
})

// A loaded machine (CI, 2 cores) stalls a Redis reply past the default 250 ms command timeout now
// and then; startReplica gives the suites REDIS_COMMAND_TIMEOUT_MS=1000, and this checks the setting works.
t.test('REDIS_COMMAND_TIMEOUT_MS: a Redis reply slower than 250 ms but within the setting keeps the store shared', { skip }, async (t) => {
  const sim = await startSim(t)
  const redis = await startRedis(t)
  const r = await start(t, sim, redis, randomUUID(), 'slow-redis', { REDIS_COMMAND_TIMEOUT_MS: '3000' })
  redis.freeze()
  const thaw = setTimeout(() => { redis.thaw() }, 600)
  const res = await chat(r, [{ role: 'user', content: 'slow redis' }])
  clearTimeout(thaw)
  redis.thaw()
  t.equal(res.status, 200)
  t.equal((await ready(r)).store, 'redis', 'a 600 ms stall is within the 3 s timeout: still shared')
  t.notMatch(r.out(), /degraded-local/)
})
