/**
 * `GET /ready` (public readiness) and `/health`'s account states: an account whose token could not
 * be obtained (cookie refused, sign-in failed) is degraded until a token fetch succeeds.
 */
import t from 'tap'
import { buildServer } from '../src/index.js'
import { readiness } from '../src/pool-view.js'
import { harness, postJson, startSim } from './helpers/setup.js'

const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }
interface Ready { status: string; mode: string; available?: number; reason?: string }
interface Health { identityPool: { healthy: number; degraded: number; down: number }; identities?: Array<{ label: string; state: string; blockedBy: string | null; available: boolean }> }

t.test('server mode: 200 while an account can serve; 503 with the reason and retry-after when none can', async (t) => {
  const sim = await startSim(t, { demoAccounts: 2 })
  const h = await harness(t, { simulator: sim, gateway: { apiKey: 'sk-a', maxRetries: 1 } })
  const ok = await fetch(`${h.url}/ready`)
  t.equal(ok.status, 200, 'public: no key needed')
  t.same(await ok.json(), { status: 'ready', mode: 'server', available: 2, store: 'memory' })

  for (const a of sim.accounts) sim.queue(a.email, { fail: 'rate_limited', rateLimitHours: 1 })
  t.equal((await postJson(`${h.url}/v1/chat/completions`, body, { authorization: 'Bearer sk-a' })).status, 429)
  const limited = await fetch(`${h.url}/ready`)
  t.equal(limited.status, 503)
  const r = await limited.json() as Ready
  t.same([r.status, r.mode, r.available], ['not_ready', 'server', 0])
  t.match(r.reason, /No upstream account can serve now \(rate_limited\)/)
  const retry = Number(limited.headers.get('retry-after'))
  t.ok(retry > 3000 && retry <= 3600, `retry-after follows the cooldown (${retry})`)

  await postJson(`${h.url}/refresh-token`, { resetCooldowns: true }, { authorization: 'Bearer sk-a' })
  t.equal((await fetch(`${h.url}/ready`)).status, 200, 'ready again once an account is back')
})

t.test('no account configured: 503; client mode: always 200', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const none = await harness(t, { simulator: sim, gateway: { cookies: [] } })
  const r = await fetch(`${none.url}/ready`)
  t.equal(r.status, 503)
  t.equal(r.headers.get('retry-after'), null)
  t.match(await r.json(), { status: 'not_ready', reason: 'No upstream account is configured' })

  const client = await harness(t, { simulator: sim, gateway: { serverMode: false, cookies: [] } })
  const c = await fetch(`${client.url}/ready`)
  t.equal(c.status, 200)
  t.same(await c.json(), { status: 'ready', mode: 'client', store: 'memory' })
})

t.test('before the start-up token fetch has finished: 503, then 200', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  sim.queue(sim.accounts[0]!.email, { endpoint: 'auths', firstByteDelayMs: 400 })
  const app = await buildServer({ qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie) }, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const early = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(early.statusCode, 503)
  t.equal(early.headers['retry-after'], '1')
  t.match(early.json(), { reason: /start-up/ })
  await app.qwenTokens.ready()
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
})

t.test('a refused cookie or a failed sign-in is degraded (not healthy) until a token fetch succeeds', async (t) => {
  const sim = await startSim(t, { demoAccounts: 2 })
  const [a, b] = sim.accounts
  sim.queue(a!.email, { endpoint: 'auths', fail: 'unauthorized' })
  const h = await harness(t, {
    simulator: sim,
    gateway: { cookies: [a!.cookie], accounts: [{ email: b!.email, password: 'wrong-password' }] },
  })
  const health = await (await fetch(`${h.url}/health`)).json() as Health
  t.same(health.identityPool, { ...health.identityPool, healthy: 0, degraded: 2, down: 0 })
  t.same(health.identities!.map((i) => [i.state, i.blockedBy, i.available]), [['degraded', 'auth_refused', false], ['degraded', 'auth_refused', false]])
  const ready = await fetch(`${h.url}/ready`)
  t.equal(ready.status, 503)
  t.match(await ready.json(), { reason: /auth_refused/ })
  t.equal((await postJson(`${h.url}/v1/chat/completions`, body)).status, 503, 'never chosen')

  // The cookie works again: a refresh brings it back.
  const refreshed = await (await postJson(`${h.url}/refresh-token`, {})).json() as { results: Array<{ success: boolean }> }
  t.same(refreshed.results.map((r) => r.success), [true, false])
  const after = await (await fetch(`${h.url}/health`)).json() as Health
  t.same([after.identityPool.healthy, after.identityPool.degraded], [1, 1])
  t.same(after.identities!.map((i) => i.state), ['healthy', 'degraded'])
  t.equal((await fetch(`${h.url}/ready`)).status, 200)
})

t.test('readiness: the soonest cooldown among blocked accounts', async (t) => {
  const now = 1_000_000
  const fake = (e: Array<{ kind: string; reason?: string; until?: number }>) => ({
    identities: e.map((_, k) => ({ id: String(k) })), initialized: true, eligibility: (i: { id: string }) => e[Number(i.id)],
  }) as never
  t.same(readiness(fake([{ kind: 'blocked', reason: 'breaker', until: now + 5000 }, { kind: 'blocked', reason: 'challenge', until: now + 2000 }]), now),
    { ready: false, reason: 'No upstream account can serve now (breaker, challenge)', retryAfterMs: 2000 })
  t.same(readiness(fake([{ kind: 'blocked', reason: 'no_token' }]), now), { ready: false, reason: 'No upstream account can serve now (no_token)', retryAfterMs: undefined })
  t.same(readiness(fake([{ kind: 'blocked', reason: 'no_token' }, { kind: 'trial' }]), now), { ready: true, available: 1 })
})
