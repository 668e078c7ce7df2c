/** The identity pool's selection and circuit breaker, with a fake clock. */
import t from 'tap'
import { UpstreamError } from '../src/errors.js'
import { IdentityPool, makeIdentity, splitAccount, splitProxy, type Identity } from '../src/pool.js'
import { identityViews, poolCounts, tokenStatus } from '../src/pool-view.js'

function jwt (id: string, expSeconds: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ id, last_password_change: 0, exp: expSeconds })}.sig`
}

function setup (n: number, start = 1_000_000) {
  const clock = { now: start }
  const logs: string[] = []
  const log = { info: (o: object, m?: string) => logs.push(`${m} ${JSON.stringify(o)}`), warn: (o: object, m?: string) => logs.push(`${m} ${JSON.stringify(o)}`) }
  const ids: Identity[] = Array.from({ length: n }, (_, k) => makeIdentity({ token: jwt(`user-${k}`, start / 1000 + 7 * 86400) }))
  const pool = new IdentityPool(ids, { now: () => clock.now, log })
  return { pool, clock, logs, ids }
}

t.test('identity ids and labels hold no secret', async (t) => {
  const cookie = `token=${jwt('abc-user', 2e9)}; ssxmod_itna=zzz`
  const a = makeIdentity({ cookie })
  const b = makeIdentity({ cookie: cookie + '; other=1' })
  t.match(a.id, /^u-[0-9a-f]{12}$/)
  t.equal(a.id, b.id, 'the id follows the account, not the cookie string')
  t.notOk(a.label.includes('ssxmod_itna=zzz'))
  t.equal(makeIdentity({ cookie, source: 'cookie 2' }).label, `${a.id} (cookie 2)`, 'labels say where the identity was configured')
  t.equal(a.token, undefined, 'a token inside the cookie is not trusted until confirmed')
  t.equal(a.canRefresh, true)
  const acc = makeIdentity({ email: 'Alice@Example.com', password: 'pw' })
  t.match(acc.id, /^e-[0-9a-f]{12}$/)
  t.equal(acc.id, makeIdentity({ email: 'alice@example.com', password: 'x' }).id)
  t.notOk(acc.label.includes('alice@example.com'))
  t.equal(acc.kind, 'account')
  const tokenOnly = makeIdentity({ token: jwt('t', 2e9) })
  t.equal(tokenOnly.canRefresh, false)
  t.match(makeIdentity({ cookie: 'no-token-here=1' }).id, /^c-[0-9a-f]{12}$/)
  const pool = new IdentityPool([a, b, acc], { now: () => 0 })
  t.equal(pool.identities.length, 2, 'two cookies of one account collapse into one identity')
})

t.test('proxy and account entry syntax', async (t) => {
  t.same(splitProxy('token=a; b=c @proxy=http://127.0.0.1:8080'), { value: 'token=a; b=c', proxyUrl: 'http://127.0.0.1:8080' })
  t.same(splitProxy('a@b.c:pw@proxy=https://u:p@proxy.example:3128'), { value: 'a@b.c:pw', proxyUrl: 'https://u:p@proxy.example:3128' })
  t.same(splitProxy('token=a'), { value: 'token=a' })
  t.same(splitProxy('x @proxy=socks5://h:1'), { value: 'x @proxy=socks5://h:1' }, 'only http(s) proxies')
  t.same(splitAccount('a@b.c:p:w'), { email: 'a@b.c', password: 'p:w' })
  t.equal(splitAccount('nopassword'), undefined)
  t.equal(splitAccount('a@b.c:'), undefined)
})

t.test('round-robin spreads 100 acquisitions over 3 identities 34/33/33', async (t) => {
  const { pool, ids } = setup(3)
  const counts = new Map<string, number>()
  const leases = Array.from({ length: 100 }, () => pool.acquire())
  for (const l of leases) counts.set(l.identity.id, (counts.get(l.identity.id) ?? 0) + 1)
  t.same(ids.map((i) => counts.get(i.id)), [34, 33, 33])
  t.equal(pool.inFlightOf(ids[0]!), 34)
  for (const l of leases) pool.release(l, { kind: 'success' })
  t.equal(pool.inFlightOf(ids[0]!), 0)
  t.equal(pool.counters.acquired, 100)
  t.equal(pool.counters.successes, 100)
  const a = pool.acquire(new Set([ids[1]!.id]))
  t.not(a.identity.id, ids[1]!.id, 'excluded identities are skipped')
})

t.test('full breaker cycle: degraded, half-open trial, doubled cooldown, recovery', async (t) => {
  const { pool, clock, logs, ids } = setup(2)
  const [a, b] = ids as [Identity, Identity]
  const fail = (i: Identity) => {
    const l = pool.acquire(new Set(pool.identities.filter((x) => x !== i).map((x) => x.id)))
    t.equal(l.identity, i)
    pool.release(l, { kind: 'failure', error: 'HTTP 500' })
    return l
  }
  fail(a); fail(a)
  t.equal(pool.health(a).state, 'healthy', 'two failures are tolerated')
  fail(a)
  t.equal(pool.health(a).state, 'degraded')
  t.equal(pool.health(a).cooldownUntil, clock.now + 120_000)
  t.equal(logs.filter((l) => l.startsWith('identity state changed')).length, 1, 'the transition is logged once')
  t.match(logs[logs.length - 1], /"to":"degraded"/)
  t.same(poolCounts(pool), { total: 2, healthy: 1, degraded: 1, down: 0, initialized: false })

  for (let k = 0; k < 4; k++) t.equal(pool.acquire().identity, b, 'cooling identities are skipped')
  t.throws(() => pool.acquire(new Set([b.id])), UpstreamError, 'nothing eligible but the cooling one')

  clock.now += 120_000
  let trial = pool.acquire(new Set([b.id]))
  t.equal(trial.identity, a)
  t.equal(trial.trial, true, 'after the cooldown: one trial request')
  t.equal(pool.acquire().identity, b, 'while the trial runs, the healthy identity takes the traffic')
  t.equal(pool.acquire(new Set([b.id])).identity, a, 'a degraded identity takes requests only when no healthy one is left')
  pool.release(trial, { kind: 'failure', error: 'HTTP 500 again' })
  t.equal(pool.health(a).state, 'degraded')
  t.equal(pool.health(a).cooldownMs, 240_000, 'a failed trial doubles the cooldown')
  t.equal(pool.health(a).cooldownUntil, clock.now + 240_000)

  clock.now += 240_000
  trial = pool.acquire(new Set([b.id]))
  t.equal(trial.trial, true)
  pool.release(trial, { kind: 'success' })
  t.equal(pool.health(a).state, 'healthy', 'a successful trial heals')
  t.equal(pool.health(a).failures, 0)
  t.equal(pool.health(a).cooldownUntil, undefined)
  t.match(logs.filter((l) => l.startsWith('identity state changed')).pop(), /"to":"healthy"/)
})

t.test('down after 5 failures, never used while cooling, recovers after its cooldown', async (t) => {
  const { pool, clock, ids } = setup(1)
  const a = ids[0]!
  for (let k = 0; k < 3; k++) pool.release(pool.acquire(), { kind: 'failure', error: 'x' })
  t.equal(pool.health(a).state, 'degraded')
  // In flight before the breaker opened: two more failures arrive.
  pool.release({ identity: a, trial: false }, { kind: 'failure', error: 'x' })
  pool.release({ identity: a, trial: false }, { kind: 'failure', error: 'x' })
  t.equal(pool.health(a).state, 'down')
  t.equal(pool.health(a).cooldownUntil, clock.now + 300_000)
  const err = (() => { try { pool.acquire(); return undefined } catch (e) { return e as UpstreamError } })()
  t.equal(err?.kind, 'no_identity')
  t.equal(err?.statusCode, 503)
  clock.now += 300_000
  const trial = pool.acquire()
  t.equal(trial.trial, true)
  t.throws(() => pool.acquire(), UpstreamError, 'a down identity takes nothing beyond its trial')
  pool.release(trial, { kind: 'success' })
  t.equal(pool.health(a).state, 'healthy')
})

t.test('cooldowns are capped', async (t) => {
  const { pool, clock, ids } = setup(1)
  const a = ids[0]!
  for (let k = 0; k < 3; k++) pool.release(pool.acquire(), { kind: 'failure', error: 'x' })
  for (let k = 0; k < 10; k++) {
    clock.now = pool.health(a).cooldownUntil!
    pool.release(pool.acquire(), { kind: 'failure', error: 'x' })
  }
  t.equal(pool.health(a).cooldownMs, pool.policy.maxCooldownMs)
  t.equal(pool.health(a).state, 'down')
})

t.test('successes bring a degraded identity back', async (t) => {
  const { pool, clock, ids } = setup(1)
  const a = ids[0]!
  for (let k = 0; k < 3; k++) pool.release(pool.acquire(), { kind: 'failure', error: 'x' })
  clock.now += 120_000
  const trial = pool.acquire()
  const fallback = pool.acquire()
  t.equal(fallback.trial, false)
  pool.release(fallback, { kind: 'success' })
  t.equal(pool.health(a).failures, 2)
  t.equal(pool.health(a).state, 'healthy', 'below the threshold again')
  pool.release(trial, { kind: 'success' })
  t.equal(pool.health(a).failures, 0)
})

t.test('rate limits and challenges are cooldowns, not breaker failures', async (t) => {
  const { pool, clock, ids } = setup(2)
  const [a, b] = ids as [Identity, Identity]
  pool.release(pool.acquire(), { kind: 'rate_limited', error: 'limit', retryAfterMs: 2 * 3_600_000 })
  t.equal(pool.health(a).failures, 0)
  t.equal(pool.health(a).state, 'healthy')
  t.equal(pool.health(a).rateLimitedUntil, clock.now + 2 * 3_600_000)
  t.equal(pool.acquire().identity, b)
  t.equal(pool.acquire().identity, b, 'a rate-limited identity is skipped')
  pool.release({ identity: b, trial: false }, { kind: 'rate_limited', error: 'limit' })
  t.equal(pool.health(b).rateLimitedUntil, clock.now + 60_000, 'no upstream time: backoff starts at a minute')
  const err = (() => { try { pool.acquire(); return undefined } catch (e) { return e as UpstreamError } })()!
  t.equal(err.kind, 'rate_limited')
  t.equal(err.statusCode, 429)
  t.equal(err.headers['retry-after'], '60', 'retry-after: until the earliest cooldown ends')
  t.equal(err.code, 'rate_limit_exceeded')
  clock.now += 60_000
  const l = pool.acquire()
  t.equal(l.identity, b)
  pool.release(l, { kind: 'rate_limited', error: 'limit' })
  t.equal(pool.health(b).rateLimitedUntil, clock.now + 120_000, 'consecutive limits double the backoff')
  clock.now += 120_000
  pool.release(pool.acquire(), { kind: 'success' })
  t.equal(pool.health(b).rateLimits, 0, 'a success resets the streak')

  pool.release({ identity: b, trial: false }, { kind: 'challenge', error: 'captcha' })
  t.equal(pool.health(b).challengedUntil, clock.now + 600_000)
  t.equal(pool.health(b).failures, 0)
  t.equal(pool.counters.challenges, 1)
  t.equal(pool.counters.rateLimited, 3)
  const c = (() => { try { pool.acquire(); return undefined } catch (e) { return e as UpstreamError } })()!
  t.equal(c.kind, 'challenge', 'a challenged pool (the other limited) answers 503 upstream_challenge')
  t.equal(c.statusCode, 503)
})

t.test('rate limited on every usable identity: identities cooling in the breaker do not count', async (t) => {
  const { pool, ids } = setup(2)
  const [a, b] = ids as [Identity, Identity]
  for (let k = 0; k < 3; k++) pool.release({ identity: a, trial: false }, { kind: 'failure', error: 'x' })
  t.equal(pool.health(a).state, 'degraded')
  pool.release({ identity: b, trial: false }, { kind: 'rate_limited', error: 'limit', retryAfterMs: 30_000 })
  const err = pool.exhausted()
  t.equal(err.kind, 'rate_limited')
  t.equal(err.headers['retry-after'], '30')
})

t.test('an identity without any credential is never chosen; neutral outcomes change nothing', async (t) => {
  const { pool, ids } = setup(1)
  const a = ids[0]!
  const l = pool.acquire()
  pool.release(l, { kind: 'neutral' })
  t.equal(pool.health(a).failures, 0)
  t.equal(pool.inFlightOf(a), 0)
  a.expiresAt = 1
  t.throws(() => pool.acquire(), UpstreamError, 'a token-only identity whose token expired is not chosen')
  a.token = undefined
  t.throws(() => pool.acquire(), UpstreamError)
  t.equal(pool.peek(), undefined)
  const empty = new IdentityPool([], { now: () => 0 })
  t.match(empty.exhausted().message, /No upstream account is configured/)
})

t.test('token status and refresh needs', async (t) => {
  const { pool, clock, ids } = setup(1)
  t.same(tokenStatus(pool, clock.now).reason, 'Token is still valid')
  clock.now = ids[0]!.expiresAt! - 3_600_000
  t.equal(tokenStatus(pool, clock.now).reason, 'Token expires within 24 hours')
  t.equal(pool.needingRefresh().length, 0, 'a token-only identity cannot refresh')
  clock.now = ids[0]!.expiresAt! + 1
  t.equal(tokenStatus(pool, clock.now).reason, 'Token has expired')
  const c = makeIdentity({ cookie: 'token=x' })
  const p2 = new IdentityPool([c], { now: () => 0 })
  t.same(p2.needingRefresh(), [c])
  t.equal(p2.needsTokenNow(c), true)
  t.equal(identityViews(p2, 0)[0]!.kind, 'cookie')
})
