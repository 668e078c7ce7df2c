/**
 * The identity pool end to end, against the simulator over real sockets: round-robin spread,
 * failover, rate limits everywhere, the circuit breaker with a fake clock, token refresh, sign-in
 * accounts, persisted state, and per-identity proxies.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { defaultAnswer } from '../src/simulator/index.js'
import type { SimLogEntry } from '../src/simulator/index.js'
import { JsonStateFile } from '../src/state.js'
import { startProxy } from './helpers/proxy.js'
import { harness, postJson, startSim, type Harness } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const COMPLETIONS = '/api/v2/chat/completions'
const AUTHS = '/api/v1/auths/'
const completions = (log: SimLogEntry[]): SimLogEntry[] => log.filter((e) => e.path === COMPLETIONS)
/** Requests that open a turn (chats/new or completions): what a completion costs upstream. */
const turnCalls = (log: SimLogEntry[]): SimLogEntry[] => log.filter((e) => e.path === COMPLETIONS || e.path === '/api/v2/chats/new')
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
/** The pool id of a simulator account (from the user id in its JWT). */
const idOf = (simAccountId: string): string => 'u-' + createHash('sha256').update(simAccountId).digest('hex').slice(0, 12)

async function complete (h: Harness, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Promise<Response> {
  return postJson(`${h.url}/v1/chat/completions`, body(extra), headers)
}

/** A completion's status, its body consumed. */
async function statusOf (h: Harness): Promise<number> {
  const res = await complete(h)
  await res.arrayBuffer()
  return res.status
}

async function health (h: Harness, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(`${h.url}/health`, { headers })
  if (res.status !== 200) throw new Error(`/health answered ${res.status}`)
  return res.json()
}

async function errorCode (res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code
}

const iso = (ms: number): string => new Date(ms).toISOString()

t.test('round-robin: 100 concurrent completions over 3 accounts spread 34/33/33', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 3 } })
  h.sim.clearLog()
  const responses = await Promise.all(Array.from({ length: 100 }, () => complete(h)))
  const statuses = responses.map((r) => r.status)
  t.same(statuses.filter((s) => s !== 200), [], 'all 100 answered 200')
  const answers = await Promise.all(responses.map(async (r) => ((await r.json()) as any).choices[0].message.content))
  t.ok(answers.every((a) => a === defaultAnswer('hi')), 'every answer is complete')
  const per = new Map<string, number>()
  for (const e of completions(h.sim.log())) per.set(e.account!, (per.get(e.account!) ?? 0) + 1)
  const counts = h.sim.accounts.map((a) => per.get(a.email) ?? 0)
  t.equal(counts.reduce((x, y) => x + y, 0), 100, 'one upstream completion per request, no retries')
  const sorted = [...counts].sort((x, y) => y - x)
  t.ok(Math.abs(sorted[0]! - 34) <= 1 && Math.abs(sorted[1]! - 33) <= 1 && Math.abs(sorted[2]! - 33) <= 1, `spread ${counts.join('/')} is 34/33/33 ±1`)
})

t.test('failover: the client sees 200 and the simulator log shows the accounts tried', async (t) => {
  t.test('a revoked token whose session expired too (the refresh fails)', async (t) => {
    const key = 'sk-pool-a'
    const h = await harness(t, { sim: { demoAccounts: 3 }, gateway: { apiKey: key } })
    const [a, b] = h.sim.accounts
    h.sim.expireSession(a!.email)
    h.sim.clearLog()
    const res = await complete(h, bearer(key))
    t.equal(res.status, 200)
    t.equal(((await res.json()) as any).choices[0].message.content, defaultAnswer('hi'))
    const log = h.sim.log().filter((e) => e.path !== '/api/models')
    t.same(log.map((e) => `${e.method} ${e.path} ${e.status} ${e.account}`), [
      'POST /api/v2/chats/new 401 null', // account a's revoked token
      `GET ${AUTHS} 401 null`, // its refresh: the session cookie is expired too
      `POST /api/v2/chats/new 200 ${b!.email}`, // failover to the next account
      `POST ${COMPLETIONS} 200 ${b!.email}`,
    ])
    const j = await health(h, bearer(key))
    const ia = j.identities.find((i: any) => i.id === idOf(a!.id))
    t.equal(ia.failures, 1, 'a token no refresh can fix is a breaker failure')
    t.match(ia.lastError, /auth|token|expired/i)
    // One breaker failure does not degrade; the refused credential does, until a token fetch works (issue 11).
    t.same([ia.state, ia.blockedBy], ['degraded', 'auth_refused'], 'a refused credential is reported degraded')
    t.equal(j.identities.find((i: any) => i.id === idOf(b!.id)).failures, 0)
  })

  t.test('rate limited, then anti-bot JSON; cooldowns and counters in /health', async (t) => {
    const key = 'sk-pool-b'
    const h = await harness(t, { sim: { demoAccounts: 3 }, gateway: { apiKey: key } })
    const [a, b, c] = h.sim.accounts
    h.sim.clearLog()
    // Round-robin starts with account a; it is rate limited for 3 hours.
    h.sim.queue(a!.email, { fail: 'rate_limited', rateLimitHours: 3 })
    const first = await complete(h, bearer(key))
    t.equal(first.status, 200)
    await first.json()
    const limitedAt = Date.now()
    // Next in the rotation is account c: it meets an anti-bot challenge; a is cooling down, so b serves.
    h.sim.queue(c!.email, { fail: 'challenge_json' })
    const second = await complete(h, bearer(key))
    t.equal(second.status, 200)
    t.equal(((await second.json()) as any).choices[0].message.content, defaultAnswer('hi'))
    const tried = completions(h.sim.log()).map((e) => `${e.account} ${e.framesSent > 0 ? 'ok' : 'failed'}`)
    t.same(tried, [`${a!.email} failed`, `${b!.email} ok`, `${c!.email} failed`, `${b!.email} ok`])

    const j = await health(h, bearer(key))
    const [ia, ib, ic] = [a, b, c].map((x) => j.identities.find((i: any) => i.id === idOf(x!.id)))
    t.ok(ia.rateLimitedUntil, 'the rate-limited account has a cooldown')
    t.ok(Math.abs(Date.parse(ia.rateLimitedUntil) - (limitedAt + 3 * 3_600_000)) < 5_000, `rateLimitedUntil ${ia.rateLimitedUntil} ≈ now + 3 h`)
    t.equal(ia.available, false)
    t.equal(ia.state, 'healthy', 'a rate limit is not a breaker failure')
    t.equal(ia.failures, 0)
    t.ok(ic.challengedUntil, 'the challenged account has a cooldown')
    t.ok(Date.parse(ic.challengedUntil) > Date.now(), 'in the future')
    t.equal(ic.state, 'healthy', 'a challenge is not a breaker failure')
    t.equal(ic.failures, 0)
    t.equal(ib.rateLimitedUntil, null)
    t.equal(ib.challengedUntil, null)
    t.equal(j.counters.rateLimited, 1)
    t.equal(j.counters.challenges, 1)
    t.equal(j.counters.failures, 0)
    t.same(j.identityPool, { total: 3, healthy: 3, degraded: 0, down: 0, initialized: true })
  })

  t.test('anti-bot HTML page', async (t) => {
    const h = await harness(t, { sim: { demoAccounts: 3 } })
    const [a, b] = h.sim.accounts
    h.sim.clearLog()
    h.sim.queue(a!.email, { fail: 'challenge_html' })
    const res = await complete(h)
    t.equal(res.status, 200)
    await res.json()
    t.same(completions(h.sim.log()).map((e) => `${e.account} ${e.framesSent > 0 ? 'ok' : 'failed'}`), [`${a!.email} failed`, `${b!.email} ok`])
    const j = await health(h)
    t.ok(j.identities.find((i: any) => i.id === idOf(a!.id)).challengedUntil)
    t.equal(j.counters.challenges, 1)
  })

  t.test('upstream 500', async (t) => {
    const h = await harness(t, { sim: { demoAccounts: 3 } })
    const [a, b] = h.sim.accounts
    h.sim.clearLog()
    h.sim.queue(a!.email, { fail: { status: 500, body: 'boom' } })
    const res = await complete(h, {}, { stream: true })
    t.equal(res.status, 200)
    t.match(await res.text(), /\[DONE\]/)
    t.same(completions(h.sim.log()).map((e) => `${e.account} ${e.status}`), [`${a!.email} 500`, `${b!.email} 200`])
    const j = await health(h)
    t.equal(j.identities.find((i: any) => i.id === idOf(a!.id)).failures, 1, 'a 5xx is a breaker failure')
    t.equal(j.counters.failures, 1)
  })
})

t.test('every account rate limited: 429 until the earliest cooldown ends, no upstream call', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  const [a, b] = h.sim.accounts
  h.sim.queue(a!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  h.sim.queue(b!.email, { fail: 'rate_limited', rateLimitHours: 2 })
  const first = await complete(h)
  t.equal(first.status, 429, 'both accounts tried, both rate limited')
  t.equal(first.headers.get('retry-after'), '3600')
  await first.json()
  t.equal(completions(h.sim.log()).length, 2)

  h.sim.clearLog()
  const res = await complete(h)
  t.equal(res.status, 429)
  const retryAfter = Number(res.headers.get('retry-after'))
  t.ok(retryAfter <= 3600 && retryAfter >= 3590, `retry-after ${retryAfter} is the time until the 1 h cooldown ends`)
  t.equal(res.headers.get('x-should-retry'), 'false')
  t.equal(await errorCode(res), 'insufficient_quota')
  t.same(turnCalls(h.sim.log()), [], 'no upstream call for it')
})

t.test('circuit breaker with a fake clock: degraded, half-open trial, doubled cooldown, down, recovery', async (t) => {
  let clock = Date.now()
  const now = () => clock
  const h = await harness(t, { sim: { demoAccounts: 1, now }, gateway: { now, maxRetries: 0 } })
  const email = h.sim.accounts[0]!.email
  const me = async () => (await health(h)).identities[0]
  const fail500 = () => h.sim.queue(email, { fail: { status: 500 } })

  for (let k = 0; k < 3; k++) {
    fail500()
    const res = await complete(h)
    t.equal(res.status, 502, `failure ${k + 1} is 502`)
    await res.json()
  }
  let i = await me()
  t.equal(i.state, 'degraded')
  t.equal(i.failures, 3)
  t.equal(i.cooldownUntil, iso(clock + 2 * 60_000), 'degraded for 2 min')

  h.sim.clearLog()
  const cooling = await complete(h)
  t.equal(cooling.status, 503, 'nothing eligible while cooling down')
  t.equal(await errorCode(cooling), 'no_upstream_identity')
  t.same(turnCalls(h.sim.log()), [], 'no upstream call while cooling down')

  // Past the cooldown: the next request is the trial; it fails.
  clock += 2 * 60_000 + 1_000
  h.sim.clearLog()
  fail500()
  const trial = await complete(h)
  t.equal(trial.status, 502)
  await trial.json()
  t.equal(completions(h.sim.log()).length, 1, 'the trial reached the upstream')
  let j = await health(h)
  i = j.identities[0]
  t.equal(j.counters.trials, 1)
  t.equal(i.state, 'degraded', 'still degraded after a failed trial')
  t.equal(i.cooldownUntil, iso(clock + 4 * 60_000), 'cooldown doubled to 4 min')
  const blocked = await complete(h)
  t.equal(blocked.status, 503)
  await blocked.json()

  clock += 4 * 60_000 + 1_000
  const ok = await complete(h)
  t.equal(ok.status, 200, 'the second trial succeeds')
  await ok.json()
  j = await health(h)
  i = j.identities[0]
  t.equal(i.state, 'healthy')
  t.equal(i.failures, 0)
  t.equal(i.cooldownUntil, null)
  t.equal(j.counters.trials, 2)

  // Down: three failures degrade it again; two failed trials (cooldowns 2 then 4 min) make five.
  for (let k = 0; k < 3; k++) {
    fail500()
    t.equal(await statusOf(h), 502)
  }
  t.equal((await me()).state, 'degraded')
  clock += 2 * 60_000 + 1_000
  fail500()
  t.equal(await statusOf(h), 502, 'failure 4 (a trial)')
  t.equal((await me()).state, 'degraded')
  clock += 4 * 60_000 + 1_000
  fail500()
  t.equal(await statusOf(h), 502, 'failure 5 (a trial)')
  i = await me()
  t.equal(i.state, 'down')
  t.equal(i.failures, 5)
  t.ok(Date.parse(i.cooldownUntil) >= clock + 5 * 60_000, 'down for at least the 5 min down cooldown')
  t.equal(i.cooldownUntil, iso(clock + 8 * 60_000), 'the failed trial doubled the 4 min cooldown')
  t.same((await health(h)).identityPool, { total: 1, healthy: 0, degraded: 0, down: 1, initialized: true })

  h.sim.clearLog()
  clock += 5 * 60_000
  const stillDown = await complete(h)
  t.equal(stillDown.status, 503, 'down: no request before its cooldown ends')
  t.equal(await errorCode(stillDown), 'no_upstream_identity')
  t.same(turnCalls(h.sim.log()), [])

  clock += 3 * 60_000 + 1_000
  const back = await complete(h)
  t.equal(back.status, 200, 'the trial after the down cooldown succeeds')
  t.equal(((await back.json()) as any).choices[0].message.content, defaultAnswer('hi'))
  i = await me()
  t.equal(i.state, 'healthy', 'a down identity recovers')
  t.equal(i.failures, 0)
  t.equal(i.cooldownUntil, null)
})

t.test('tokens close to expiry are refreshed on the timer', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2, tokenTtlSeconds: 3600 }, gateway: { tokenRefreshIntervalHours: 0.0002 } })
  const authsOf = (email: string) => h.sim.log().filter((e) => e.path === AUTHS && e.account === email && e.status === 200).length
  const emails = h.sim.accounts.map((a) => a.email)
  t.same(emails.map(authsOf), [1, 1], 'one token fetch per account at start')
  const deadline = Date.now() + 3_000
  while (Date.now() < deadline && !emails.every((e) => authsOf(e) >= 2)) await new Promise((resolve) => setTimeout(resolve, 100))
  for (const e of emails) t.ok(authsOf(e) >= 2, `${e}: refreshed (${authsOf(e)} /auths calls)`)
  const j = await health(h)
  t.ok(j.token.remainingTime > 0, 'the token is still valid')
  t.equal(j.token.valid, true)
  t.ok(j.counters.refreshes >= 4)
  t.equal(j.counters.refreshFailures, 0)
  const res = await complete(h)
  t.equal(res.status, 200)
  await res.json()
})

t.test('sign-in accounts', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const acct = sim.accounts[0]!
  const h = await harness(t, { simulator: sim, gateway: { cookies: [], accounts: [{ email: acct.email, password: acct.password }] } })
  const res = await complete(h)
  t.equal(res.status, 200)
  t.equal(((await res.json()) as any).choices[0].message.content, defaultAnswer('hi'))
  const signins = sim.log().filter((e) => e.method === 'POST' && e.path === '/api/v1/auths/signin')
  t.equal(signins.length, 1)
  t.equal(signins[0]!.status, 200)
  t.same(signins[0]!.body, { email: acct.email, password: createHash('sha256').update(acct.password).digest('hex') }, 'the password is sent as its sha256 hex')
  t.notOk(JSON.stringify(sim.log()).includes(acct.password), 'the plain password never reaches the upstream')
  t.same(completions(sim.log()).map((e) => e.account), [acct.email])
  const okHealth = await (await fetch(`${h.url}/health`)).text()
  t.notOk(okHealth.includes(acct.password), 'no password in /health')
  const view = JSON.parse(okHealth).identities[0]
  t.equal(view.kind, 'account')
  t.notOk(okHealth.includes(acct.email), 'the e-mail is masked')

  const wrong = 'not-the-password-42'
  const bad = await harness(t, { simulator: sim, gateway: { cookies: [], accounts: [{ email: acct.email, password: wrong }] } })
  sim.clearLog()
  const r = await complete(bad)
  t.equal(r.status, 503)
  t.equal(await errorCode(r), 'upstream_auth_failed')
  t.same(turnCalls(sim.log()), [], 'no turn without a token')
  const text = await (await fetch(`${bad.url}/health`)).text()
  const j = JSON.parse(text)
  t.match(j.identities[0].lastError, /incorrect|sign|auth/i)
  t.notOk(text.includes(wrong), 'the plain password never appears in /health')
  t.notOk(text.includes(acct.password))
})

t.test('pool state survives a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'qwen-pool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'state.json')
  const store = new JsonStateFile(path)
  const clock = Date.now()
  const now = () => clock
  const sim = await startSim(t, { demoAccounts: 2 })
  const [a, b] = sim.accounts
  const gateway = { stateFile: store, stateDebounceMs: 10, now, stateSecret: 's3cret' }

  const h1 = await harness(t, { simulator: sim, gateway })
  sim.queue(a!.email, { fail: { status: 500 } }, { fail: { status: 500 } }, { fail: { status: 500 } })
  for (let k = 0; k < 3; k++) {
    const res = await complete(h1)
    t.equal(res.status, 200, 'each request fails over to account b')
    await res.json()
  }
  const before = (await health(h1)).identities
  const ia = before.find((i: any) => i.id === idOf(a!.id))
  t.equal(ia.state, 'degraded')
  t.equal(ia.cooldownUntil, iso(clock + 2 * 60_000))
  const tokens = h1.app.qwenPool.identities.map((i) => i.token!)
  t.equal(tokens.length, 2)
  await h1.app.close()

  const saved = await readFile(path, 'utf8')
  const doc = JSON.parse(saved)
  t.equal(doc.version, 2)
  t.equal(doc.identities[idOf(a!.id)].state, 'degraded')
  for (const x of [a!, b!]) {
    t.notOk(saved.includes(x.cookie), 'no cookie in the state file')
    t.notOk(saved.includes(/token=([^;]+)/.exec(x.cookie)![1]!), 'no session token in the state file')
    t.notOk(saved.includes(x.password), 'no password in the state file')
  }
  for (const tok of tokens) t.notOk(saved.includes(tok), 'no plain token in the state file')
  t.type(doc.identities[idOf(a!.id)].token, 'string', 'tokens are kept sealed with the secret')

  // Start again with the same store, clock and secret.
  sim.clearLog()
  const h2 = await harness(t, { simulator: sim, gateway })
  t.same(sim.log().filter((e) => e.path.startsWith(AUTHS)), [], 'tokens restored: no /auths call at start')
  const after = await health(h2)
  const ja = after.identities.find((i: any) => i.id === idOf(a!.id))
  t.equal(ja.state, 'degraded', 'the same account is still degraded')
  t.equal(ja.cooldownUntil, ia.cooldownUntil, 'with the same cooldown')
  t.equal(ja.failures, 3)
  t.same(after.identityPool, { total: 2, healthy: 1, degraded: 1, down: 0, initialized: true })
  const res = await complete(h2)
  t.equal(res.status, 200, 'a completion works on the restored token')
  await res.json()
  t.same(completions(sim.log()).map((e) => e.account), [b!.email])
  t.same(sim.log().filter((e) => e.path.startsWith(AUTHS)), [], 'the restored token served it')
  await h2.app.close()
  t.ok((await stat(`${path}.bak`)).isFile(), 'the previous version is kept as .bak')
  t.equal(JSON.parse(await readFile(`${path}.bak`, 'utf8')).version, 2)

  // Without the secret the sealed tokens cannot be used: tokens are fetched at start, states still restored.
  sim.clearLog()
  const h3 = await harness(t, { simulator: sim, gateway: { stateFile: store, stateDebounceMs: 10, now } })
  t.same(sim.log().filter((e) => e.path === AUTHS).map((e) => e.account).sort(), [a!.email, b!.email].sort(), 'without the secret, tokens are fetched')
  const third = (await health(h3)).identities.find((i: any) => i.id === idOf(a!.id))
  t.equal(third.state, 'degraded')
  t.equal(third.cooldownUntil, ia.cooldownUntil)
  await h3.app.close()
  t.notOk((await readFile(path, 'utf8')).includes('"token"'), 'saved without the secret: no token at all')
})

t.test('a corrupt state file is ignored and rewritten', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'qwen-pool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'state.json')
  await writeFile(path, '{not json')
  const h = await harness(t, { sim: { demoAccounts: 2 }, gateway: { stateFile: new JsonStateFile(path), stateDebounceMs: 10 } })
  for (let k = 0; k < 2; k++) {
    const res = await complete(h)
    t.equal(res.status, 200)
    await res.json()
  }
  t.same((await health(h)).identityPool, { total: 2, healthy: 2, degraded: 0, down: 0, initialized: true })
  await h.app.close()
  const doc = JSON.parse(await readFile(path, 'utf8'))
  t.equal(doc.version, 2, 'rewritten as a valid state file')
  t.equal(Object.keys(doc.identities).length, 2)
})

t.test('per-identity proxy: only that account goes through it', async (t) => {
  const proxy = await startProxy()
  t.teardown(() => proxy.close())
  const sim = await startSim(t, { demoAccounts: 2 })
  const [a, b] = sim.accounts
  const h = await harness(t, { simulator: sim, gateway: { cookies: [`${a!.cookie} @proxy=${proxy.url}`, b!.cookie] } })
  const view = (await health(h)).identities
  t.same(view.map((i: any) => [i.id, i.proxy]), [[idOf(a!.id), true], [idOf(b!.id), false]])
  for (let k = 0; k < 4; k++) {
    const res = await complete(h, {}, { stream: k % 2 === 1 })
    t.equal(res.status, 200)
    await res.text()
  }
  t.ok(proxy.tunnels + proxy.requests >= 1, `the proxy carried traffic (${proxy.tunnels} tunnels, ${proxy.requests} forwarded)`)
  const log = completions(sim.log())
  t.same(log.map((e) => `${e.account} ${e.status}`), [`${a!.email} 200`, `${b!.email} 200`, `${a!.email} 200`, `${b!.email} 200`])
  const viaProxy = (what: string) => proxy.seen.filter((s) => s === what).length
  t.equal(viaProxy(`POST ${COMPLETIONS}`), 2, "exactly account a's completions went through the proxy")
  t.equal(viaProxy('POST /api/v2/chats/new'), 2)
  t.equal(viaProxy(`GET ${AUTHS}`), 1, "account a's token fetch went through the proxy, b's did not")
  t.equal(sim.log().filter((e) => e.path === AUTHS).length, 2)

  // The helper also forwards plain absolute-URI requests.
  const status = await new Promise<number>((resolve, reject) => {
    const u = new URL(proxy.url)
    const req = httpRequest({ host: u.hostname, port: u.port, path: `${sim.url}/api/models`, method: 'GET' }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(status, 200)
  t.equal(proxy.requests, 1)
})

t.test('a rate limit met when the retry budget runs out is a short 429 while other accounts are fine', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 4 }, gateway: { maxRetries: 1 } })
  const [a, b] = h.sim.accounts
  h.sim.queue(a!.email, { fail: { status: 500 } })
  h.sim.queue(b!.email, { fail: 'rate_limited', rateLimitHours: 10 })
  const res = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(res.status, 429)
  t.equal(res.headers.get('retry-after'), '1')
  t.equal(res.headers.get('x-should-retry'), null, 'clients may retry')
  t.equal((await res.json() as any).error.code, 'rate_limit_exceeded')
  const again = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(again.status, 200, 'and the retry succeeds on another account')
})
