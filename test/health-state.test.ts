/** The identity health state machine (src/health.ts) and the memory store's selection, table-driven. */
import t from 'tap'
import { DEFAULT_POLICY, applyOutcome, clearCooldowns, eligibility, newHealth, type HealthRecord } from '../src/health.js'
import { MemoryStore } from '../src/store.js'

const NOW = 1_000_000
const cred = { canRefresh: true, tokenValid: true }
const h = (over: Partial<HealthRecord>): HealthRecord => ({ ...newHealth(), ...over })

t.test('eligibility: one rule for every state', async (t) => {
  const cases: Array<[string, HealthRecord, { canRefresh: boolean; tokenValid: boolean }, unknown]> = [
    ['healthy', h({}), cred, { kind: 'ready' }],
    ['rate limited', h({ rateLimitedUntil: NOW + 5 }), cred, { kind: 'blocked', reason: 'rate_limited', until: NOW + 5 }],
    ['challenged', h({ challengedUntil: NOW + 7 }), cred, { kind: 'blocked', reason: 'challenge', until: NOW + 7 }],
    ['both: back when the later ends', h({ rateLimitedUntil: NOW + 9, challengedUntil: NOW + 7 }), cred, { kind: 'blocked', reason: 'rate_limited', until: NOW + 9 }],
    ['expired cooldowns are ignored', h({ rateLimitedUntil: NOW - 1, challengedUntil: NOW }), cred, { kind: 'ready' }],
    ['token-only, expired', h({}), { canRefresh: false, tokenValid: false }, { kind: 'blocked', reason: 'no_token', until: undefined }],
    ['refused credential, no token', h({ authRefused: true }), { canRefresh: true, tokenValid: false }, { kind: 'blocked', reason: 'auth_refused', until: undefined }],
    ['refused, although its token has not expired', h({ authRefused: true }), cred, { kind: 'blocked', reason: 'auth_refused', until: undefined }],
    ['token not fetched yet: fetched on first use', h({}), { canRefresh: true, tokenValid: false }, { kind: 'ready' }],
    ['degraded, cooling', h({ state: 'degraded', cooldownUntil: NOW + 3 }), cred, { kind: 'blocked', reason: 'breaker', until: NOW + 3 }],
    ['degraded, cooled: trial', h({ state: 'degraded', cooldownUntil: NOW - 1 }), cred, { kind: 'trial' }],
    ['degraded, trial running: fallback', h({ state: 'degraded', trialInFlight: true }), cred, { kind: 'fallback' }],
    ['down, trial running: nothing', h({ state: 'down', trialInFlight: true }), cred, { kind: 'blocked', reason: 'breaker', until: undefined }],
  ]
  for (const [name, rec, c, want] of cases) t.same(eligibility(rec, c, NOW), want, name)
})

t.test('applyOutcome: transitions and cooldowns', async (t) => {
  const p = DEFAULT_POLICY
  const rec = newHealth()
  t.same(applyOutcome(rec, { kind: 'failure', error: 'x' }, false, p, NOW), {})
  applyOutcome(rec, { kind: 'failure', error: 'x' }, false, p, NOW)
  t.same(applyOutcome(rec, { kind: 'failure', error: 'x' }, false, p, NOW).transition, { from: 'healthy', to: 'degraded', why: 'x' })
  t.equal(rec.cooldownUntil, NOW + p.degradedCooldownMs)
  const trial = applyOutcome({ ...rec, trialInFlight: true }, { kind: 'failure', error: 'y' }, true, p, NOW)
  t.same(trial.cooldown, { kind: 'breaker', until: NOW + 2 * p.degradedCooldownMs }, 'a failed trial doubles the cooldown')
  t.same(applyOutcome(newHealth(), { kind: 'rate_limited', error: 'r', retryAfterMs: 10 }, false, p, NOW).cooldown, { kind: 'rate_limited', until: NOW + 10 })
  t.same(applyOutcome(newHealth(), { kind: 'challenge', error: 'c' }, false, p, NOW).cooldown, { kind: 'challenge', until: NOW + p.challengeCooldownMs })
  const refused = newHealth()
  applyOutcome(refused, { kind: 'auth_refused', error: 'a' }, false, p, NOW)
  t.same([refused.authRefused, refused.failures], [true, 1])
  applyOutcome(refused, { kind: 'success' }, false, p, NOW)
  t.same([refused.authRefused, refused.failures], [false, 0], 'a success clears a refused credential')
  const n = newHealth()
  t.same(applyOutcome(n, { kind: 'neutral' }, false, p, NOW), {})
  t.same(n, newHealth(), 'neutral changes nothing')
})

t.test('clearCooldowns: challenge only, or everything', async (t) => {
  const rec = h({ state: 'down', failures: 6, cooldownUntil: NOW + 1, rateLimitedUntil: NOW + 1, challengedUntil: NOW + 1, challenges: 2, authRefused: true })
  t.equal(clearCooldowns(rec, 'challenge'), undefined)
  t.same([rec.challengedUntil, rec.challenges, rec.authRefused, rec.rateLimitedUntil, rec.state], [undefined, 0, false, NOW + 1, 'down'])
  t.same(clearCooldowns(rec, 'all'), { from: 'down', to: 'healthy', why: 'cooldowns reset by an operator' })
  t.same([rec.rateLimitedUntil, rec.cooldownUntil, rec.failures], [undefined, undefined, 0])
})

t.test('the memory store: round-robin pick, trials marked, changes published once', async (t) => {
  const store = new MemoryStore(DEFAULT_POLICY).identities
  const changes: string[] = []
  const off = store.subscribe((c) => changes.push(`${c.id}:${c.applied.transition?.to ?? c.applied.cooldown?.kind ?? '-'}`))
  const cands = ['a', 'b', 'c'].map((id) => ({ id, cred }))
  const picks = Array.from({ length: 6 }, () => { const p = store.pick(cands, new Set(), NOW); return p.ok ? p.id : '?' })
  t.same(picks, ['a', 'b', 'c', 'a', 'b', 'c'])
  t.same(store.pick(cands, new Set(['a', 'b', 'c']), NOW), { ok: false, verdicts: [] }, 'everything excluded')
  store.record('a', { kind: 'success' }, false, NOW)
  t.same(changes, [], 'a success on a healthy identity is no change worth saving')
  store.record('b', { kind: 'rate_limited', error: 'r', retryAfterMs: 100 }, false, NOW)
  t.same(changes, ['b:rate_limited'])
  store.put('c', h({ state: 'degraded', cooldownUntil: NOW - 1 }))
  const trial = store.pick([{ id: 'c', cred }], new Set(), NOW)
  t.same(trial, { ok: true, id: 'c', trial: true })
  t.equal(store.health('c').trialInFlight, true)
  t.same(store.pick([{ id: 'c', cred }], new Set(), NOW), { ok: true, id: 'c', trial: false }, 'degraded with its trial running: taken only as a fallback')
  t.same(Object.keys(store.snapshot()).sort(), ['a', 'b', 'c'])
  off()
  store.reset('b', 'all')
  t.equal(changes.length, 1, 'unsubscribed')
})

t.test('annotating a record during a trial does not open a second trial', async (t) => {
  const store = new MemoryStore(DEFAULT_POLICY).identities
  store.put('d', h({ state: 'down', failures: 5, cooldownUntil: NOW - 1 }))
  t.same(store.pick([{ id: 'd', cred }], new Set(), NOW), { ok: true, id: 'd', trial: true })
  store.annotate('d', { error: 'token fetch: upstream 502' }, NOW)
  t.same(store.pick([{ id: 'd', cred }], new Set(), NOW), { ok: false, verdicts: [{ id: 'd', e: { kind: 'blocked', reason: 'breaker', until: undefined } }] })
  t.equal(store.health('d').lastError, 'token fetch: upstream 502')
})
