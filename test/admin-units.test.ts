/** The dashboard's building blocks on their own: masking, sealing, parsing, runtime accounts, the recorder, the pool seams, assets. */
import t from 'tap'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { adminLabel, maskEmail } from '../src/admin/mask.js'
import { openAccount, sealAccount } from '../src/admin/seal.js'
import { parseAccountLine, RuntimeAccounts } from '../src/admin/runtime-accounts.js'
import { MemoryAccountStore } from '../src/admin/accounts.js'
import { MemoryRequestLog } from '../src/admin/request-log.js'
import { identityId, RequestRecorder, toRecord, worthLogging } from '../src/admin/recorder.js'
import { adminUiDir, loadIndex } from '../src/admin/assets.js'
import { adminState } from '../src/admin/view.js'
import { GatewayEvents, type CompletionEvent, type RequestEvent } from '../src/events.js'
import { eligibility, newHealth } from '../src/health.js'
import { IdentityPool, makeIdentity } from '../src/pool.js'
import { identityStatus, statusCounts } from '../src/pool-view.js'

const SECRET = 'unit-secret'

t.test('masking', async (t) => {
  t.equal(maskEmail('alice@example.com'), 'a***@example.com')
  t.equal(maskEmail('nodomain'), '***')
  t.equal(maskEmail('trailing@'), '***')
  t.equal(adminLabel(makeIdentity({ email: 'bob@x.org', password: 'pw', source: 'account 2' }), false), 'b***@x.org (account 2)')
  t.equal(adminLabel(makeIdentity({ email: 'bob@x.org', password: 'pw', source: 'runtime' }), true), 'b***@x.org (runtime)')
  const c = makeIdentity({ cookie: 'token=abc; cna=1', source: 'cookie 1' })
  t.equal(adminLabel(c, false), `${c.id} (cookie 1)`)
  const odd = { ...c, label: 'unlabelled' }
  t.equal(adminLabel(odd, false), `${c.id} (cookie)`, 'a label without its origin falls back to the kind')
})

t.test('sealing', async (t) => {
  const s = sealAccount(SECRET, 'id-1', { cookie: 'token=abc', proxyUrl: 'http://127.0.0.1:3128' })
  t.same(openAccount(SECRET, 'id-1', s), { cookie: 'token=abc', proxyUrl: 'http://127.0.0.1:3128' })
  t.same(openAccount(SECRET, 'id-2', sealAccount(SECRET, 'id-2', { email: 'a@b.c', password: 'p' })), { email: 'a@b.c', password: 'p' })
  t.equal(openAccount(SECRET, 'id-1', 'nodot'), undefined)
  t.equal(openAccount(SECRET, 'id-1', '.x.y.z'), undefined)
  t.equal(openAccount(SECRET, 'id-1', s.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'))), undefined, 'tampered')
  // Sealed, but not an account.
  const { TokenCipher } = await import('../src/state.js')
  const salt = Buffer.alloc(16, 1)
  const raw = (plain: string) => `${salt.toString('base64url')}.${new TokenCipher(SECRET, salt).encrypt(plain, 'id-1')}`
  t.equal(openAccount(SECRET, 'id-1', raw('not json')), undefined)
  t.equal(openAccount(SECRET, 'id-1', raw('{"other":1}')), undefined)
})

t.test('parsing pasted lines', async (t) => {
  t.same(parseAccountLine('a@b.com:pa:ss'), { account: { email: 'a@b.com', password: 'pa:ss' } })
  t.same(parseAccountLine('a@b.com:pw @proxy=http://127.0.0.1:1'), { account: { email: 'a@b.com', password: 'pw', proxyUrl: 'http://127.0.0.1:1' } })
  t.same(parseAccountLine('"Cookie: token=x; cna=y"'), { account: { cookie: 'token=x; cna=y' } })
  t.same(parseAccountLine('token=x @proxy=http://127.0.0.1:1'), { account: { cookie: 'token=x', proxyUrl: 'http://127.0.0.1:1' } })
  t.match(parseAccountLine('just words'), { problem: /neither/ })
  t.match(parseAccountLine('token=a\u0001b'), { problem: /cookie contains a control character/ })
})

function pool (ids: ReturnType<typeof makeIdentity>[] = []): IdentityPool {
  return new IdentityPool(ids, { now: Date.now })
}

t.test('runtime accounts: memory only without a secret; restore skips what does not open', async (t) => {
  const p = pool()
  const store = new MemoryAccountStore()
  const warned: object[] = []
  const refresh = async (i: { id: string; label: string }) => ({ identity: i.id, label: i.label, success: false, error: 'nope' })
  const mem = new RuntimeAccounts({ pool: p, store, secret: undefined, durable: true, refresh, now: () => 5, log: { warn: (o) => warned.push(o) } })
  t.equal(mem.persistent, false)
  const r = await mem.add('token=abc\n\n# comment\r\n')
  t.equal(r.length, 1)
  t.match(r[0]!.error, /no token yet/, 'added without a token: said so')
  t.same(await store.list(), [], 'nothing stored without STATE_SECRET')
  t.same(mem.list(), [{ id: r[0]!.id, addedAt: 5 }])
  t.equal(await mem.restore(), 0)
  t.equal(await mem.remove('unknown'), false)

  const sealed = new RuntimeAccounts({ pool: p, store, secret: SECRET, durable: true, refresh, now: () => 6, log: { warn: (o) => warned.push(o) } })
  await sealed.add('c@d.com:pw')
  const good = makeIdentity({ email: 'e@f.com', password: 'pw', source: 'runtime' })
  await store.put({ id: 'x-1', sealed: 'garbage', addedAt: 1 })
  await store.put({ id: 'wrong-id', sealed: sealAccount(SECRET, 'wrong-id', { email: 'e@f.com', password: 'pw' }), addedAt: 1 })
  await store.put({ id: good.id, sealed: sealAccount(SECRET, good.id, { email: 'e@f.com', password: 'pw' }), addedAt: 2 })
  const p2 = pool()
  const again = new RuntimeAccounts({ pool: p2, store, secret: SECRET, durable: true, refresh, now: () => 7, log: { warn: (o) => warned.push(o) } })
  t.equal(await again.restore(), 2, 'the two that open into their own id come back')
  t.equal(p2.identities.length, 2)
  t.ok(again.has(good.id))
  t.equal(warned.length, 1, 'the damaged one is reported')
  t.equal(await again.restore(), 0, 'already in the pool: not added twice')
  t.equal(again.persistent, true, 'sealed into a store that outlives the process')
  const inMemory = new RuntimeAccounts({ pool: pool(), store, secret: SECRET, durable: false, refresh, now: () => 8, log: { warn: (o) => warned.push(o) } })
  t.equal(inMemory.persistent, false, 'the in-memory store does not outlive a restart: the page says so')
})

t.test('pool seams: add, remove, disabled eligibility and the status vocabulary', async (t) => {
  const a = makeIdentity({ token: 'not-a-jwt', source: 'QWEN_TOKEN' })
  const p = pool([a])
  const b = makeIdentity({ cookie: 'token=b' })
  t.equal(p.add(b), true)
  t.equal(p.add(b), false, 'twice: refused')
  t.equal(p.identities.length, 2)
  t.equal(p.remove(b.id), true)
  t.equal(p.remove(b.id), false)
  t.same(p.identities.map((i) => i.id), [a.id])
  t.same(eligibility({ ...newHealth(), disabled: true }, { canRefresh: true, tokenValid: true }, 0), { kind: 'blocked', reason: 'disabled', until: undefined })
  t.equal(identityStatus(p, a), 'healthy')
  const noToken = makeIdentity({ cookie: 'token=c' })
  p.add(noToken)
  noToken.canRefresh = false
  t.equal(identityStatus(p, noToken), 'no_token')
  const refused = makeIdentity({ cookie: 'token=d' })
  p.add(refused)
  p.refreshFailed(refused, new (await import('../src/errors.js')).UpstreamError('auth_failed', 'refused'))
  t.equal(identityStatus(p, refused), 'no_token', 'a refused credential whose token was dropped')
  t.same(statusCounts(p), { healthy: 1, degraded: 0, down: 0, cooldown: 0, disabled: 0, no_token: 2 })
  const s = adminState({ pool: p, isRuntime: () => false, now: Date.now(), version: 'v', startedAt: 0, replicaId: undefined, storeMode: 'memory', accountsPersistent: false, serverMode: true })
  t.equal(s.replicaId, null)
  t.equal(s.identities.find((i) => i.id === refused.id)!.lastError, 'refused')
})

t.test('the recorder', async (t) => {
  const completion: CompletionEvent = {
    requestId: 'r1', model: 'm', stream: true, identity: 'u-1 (cookie 1)', status: 200, outcome: 'ok', attempts: 2, ttftMs: 5, durationMs: 9,
    usage: { prompt: 1, completion: 2, reasoning: 0 }, finishReason: 'stop', chatId: 'c', error: undefined,
  }
  const req = (over: Partial<RequestEvent>): RequestEvent => ({ requestId: 'r1', method: 'POST', route: '/v1/chat/completions', status: 200, durationMs: 10, key: 'k', completion: undefined, ...over })
  t.equal(worthLogging(req({ completion })), true)
  t.equal(worthLogging(req({})), true, 'an API POST without a completion (refused early)')
  t.equal(worthLogging(req({ method: 'GET', route: '/health' })), false)
  t.equal(worthLogging(req({ route: '/admin/api/accounts' })), false)
  t.equal(worthLogging(req({ route: 'unmatched' })), false)
  t.equal(identityId(undefined), undefined)
  t.match(toRecord(req({ status: 401 }), [], undefined, 100), { error: 'http_401', model: undefined, durationMs: 10, at: 90 })
  t.equal(toRecord(req({ status: 401 }), [], undefined, 100, 'invalid_api_key').error, 'invalid_api_key')
  t.equal(toRecord(req({ status: 499, completion }), [], undefined, 100).error, 'client_closed')
  t.equal(toRecord(req({ completion: { ...completion, error: 'the upstream stream broke' } }), [], undefined, 100).error, 'stream_error', 'a stream that failed after it started')
  t.equal(toRecord(req({ completion }), [], undefined, 100).error, undefined)

  const events = new GatewayEvents()
  const log = new MemoryRequestLog(3)
  const errors: unknown[] = []
  const rec = new RequestRecorder(events, log, { now: () => 1000, replica: 'r', onError: (e) => errors.push(e) })
  const seen: string[] = []
  const off = rec.subscribe((r) => seen.push(r.requestId))
  events.emit('failover', { requestId: 'r1', identity: 'u-2 (cookie 2)', code: 'x', error: 'e', attempt: 1 })
  events.emit('failover', { requestId: 'r1', identity: 'u-3 (cookie 3)', code: 'x', error: 'e', attempt: 2 })
  events.emit('request', req({ completion }))
  events.emit('request', req({ requestId: 'r2', method: 'GET', route: '/health' }))
  await new Promise((r) => setImmediate(r))
  const [got] = await log.recent(5)
  t.same(got, { at: 991, requestId: 'r1', key: 'k', route: '/v1/chat/completions', model: 'm', stream: true, status: 200, ttftMs: 5, durationMs: 9, tokensIn: 1, tokensOut: 2, identity: 'u-1', tried: ['u-2', 'u-3'], error: undefined, replica: 'r' })
  t.same(seen, ['r1'])
  for (let k = 0; k < 1001; k++) events.emit('failover', { requestId: `p${k}`, identity: 'u-9 (x)', code: 'x', error: 'e', attempt: 1 })
  events.emit('request', req({ requestId: 'p0' }))
  events.emit('request', req({ requestId: 'p1000' }))
  await new Promise((r) => setImmediate(r))
  const [last, before] = await log.recent(2)
  t.same([before!.tried, last!.tried], [[], ['u-9']], 'failover paths of requests that never end are bounded (oldest dropped)')
  rec.noteError('e1', 'upstream_error')
  for (let k = 0; k < 1000; k++) rec.noteError(`n${k}`, 'x')
  events.emit('request', req({ requestId: 'e1', status: 502 }))
  events.emit('request', req({ requestId: 'n999', status: 502 }))
  await new Promise((r) => setImmediate(r))
  t.same((await log.recent(2)).map((r) => r.error), ['x', 'http_502'], 'error codes of requests that never end are bounded too')
  off()
  const failing = new RequestRecorder(events, { add: async () => { throw new Error('store down') }, recent: async () => [] }, { now: () => 1, replica: undefined, onError: (e) => errors.push(e) })
  events.emit('request', req({ requestId: 'z' }))
  await new Promise((r) => setImmediate(r))
  t.match(errors, [{ message: 'store down' }], 'a store failure is reported, not thrown')
  failing.close()
  rec.close()
})

t.test('assets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'admin-ui-'))
  t.throws(() => adminUiDir(dir), /admin-ui\/index.html not found/)
  mkdirSync(join(dir, 'admin-ui'))
  writeFileSync(join(dir, 'admin-ui', 'index.html'), '<html></html>')
  const nested = join(dir, 'a', 'b')
  mkdirSync(nested, { recursive: true })
  t.equal(adminUiDir(nested), join(dir, 'admin-ui'), 'found walking up')
  t.throws(() => loadIndex(join(dir, 'admin-ui')), /no import map/)
  t.match(loadIndex(adminUiDir()).csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'; .*frame-ancestors 'none'/)
})

t.test('the in-memory request log keeps the last records, newest first, and gives nothing for a limit of 0', async (t) => {
  const log = new MemoryRequestLog(3)
  for (let k = 1; k <= 5; k++) await log.add({ at: k, requestId: `r${k}`, key: 'k', route: '/v1/chat/completions', model: 'm', stream: false, status: 200, ttftMs: 1, durationMs: 2, tokensIn: 1, tokensOut: 1, identity: undefined, tried: [], error: undefined, replica: undefined })
  t.same((await log.recent(10)).map((r) => r.requestId), ['r5', 'r4', 'r3'], 'bounded to the newest three')
  t.same((await log.recent(2)).map((r) => r.requestId), ['r5', 'r4'])
  t.same(await log.recent(0), [])
})

t.test('runtime accounts follow the shared store: what another replica adds or removes', async (t) => {
  const store = new MemoryAccountStore()
  const warned: object[] = []
  const refresh = async (i: { id: string; label: string }) => ({ identity: i.id, label: i.label, success: true, error: '' })
  const log = { warn: (o: object) => { warned.push(o) } }
  const pa = pool()
  const pb = pool()
  const a = new RuntimeAccounts({ pool: pa, store, secret: SECRET, durable: true, refresh, now: () => 1, log })
  const b = new RuntimeAccounts({ pool: pb, store, secret: SECRET, durable: true, refresh, now: () => 1, log })
  const [added] = await a.add('g@h.com:pw')
  t.ok(added!.ok)
  t.notOk(pb.get(added!.id!), 'B does not know it yet')
  t.same(await b.sync(), { added: 1, removed: 0 })
  t.ok(pb.get(added!.id!) && b.has(added!.id!), 'B serves it after following the store')
  t.same(await b.sync(), { added: 0, removed: 0 }, 'idempotent')
  await store.put({ id: 'x-damaged', sealed: 'garbage', addedAt: 1 })
  await b.sync()
  await b.sync()
  t.equal(warned.length, 1, 'an account that does not open is reported once')
  t.equal(await a.remove(added!.id!), true)
  t.same(await b.sync(), { added: 0, removed: 1 })
  t.notOk(pb.get(added!.id!), 'removed on A: gone from B too')
})
