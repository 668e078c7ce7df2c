/** Persisted pool state, the token cipher, and the config.json token write-back. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { newHealth } from '../src/health.js'
import { parseAccounts, ConfigError, loadConfig, parseCookies } from '../src/config.js'
import { IdentityPool, makeIdentity } from '../src/pool.js'
import { configTokenWriter } from '../src/server.js'
import { CorruptStateError, JsonStateFile, StatePersister, TokenCipher, restorePool, serializePool } from '../src/state.js'

const tmp = () => mkdtempSync(join(tmpdir(), 'qg-state-'))

function pool (now = 1_000) {
  const a = makeIdentity({ cookie: 'token=aaa; secret_cookie=1' })
  const b = makeIdentity({ email: 'b@example.com', password: 'hunter2' })
  return new IdentityPool([a, b], { now: () => now })
}

t.test('the token cipher round-trips and rejects other keys', async (t) => {
  const c = new TokenCipher('s3cret')
  const sealed = c.encrypt('eyJ.token.value')
  t.notMatch(sealed, /token/)
  t.equal(c.decrypt(sealed), 'eyJ.token.value')
  t.equal(new TokenCipher('other').decrypt(sealed), undefined)
  t.equal(c.decrypt('garbage'), undefined)
})

t.test('state round-trips without secrets; tokens only when sealed', async (t) => {
  const p = pool()
  const [a, b] = p.identities as [ReturnType<typeof makeIdentity>, ReturnType<typeof makeIdentity>]
  p.restore(a, { ...newHealth(), state: 'degraded', failures: 3, cooldownMs: 120_000, cooldownUntil: 121_000, rateLimitedUntil: 5_000, lastError: 'HTTP 500' })
  a.token = 'tok-a'
  a.expiresAt = 9_999_000
  b.token = 'tok-b'
  const plain = serializePool(p, undefined, 1_000)
  for (const secret of ['secret_cookie', 'tok-a', 'tok-b', 'hunter2', 'token=aaa']) t.notOk(plain.includes(secret), `no ${secret} in the state`)
  const cipher = new TokenCipher('k')
  const sealed = serializePool(p, cipher, 1_000)
  t.notOk(sealed.includes('tok-a'))

  const fresh = pool()
  const r = restorePool(fresh, plain, cipher)
  t.same(r, { identities: 2, tokens: 0 })
  const fa = fresh.identities[0]!
  const ha = fresh.health(fa)
  t.same([ha.state, ha.failures, ha.cooldownUntil, ha.rateLimitedUntil, ha.lastError, fa.token], ['degraded', 3, 121_000, 5_000, 'HTTP 500', undefined])
  const withTokens = pool()
  t.same(restorePool(withTokens, sealed, cipher), { identities: 2, tokens: 2 })
  t.equal(withTokens.identities[0]!.token, 'tok-a')
  t.equal(withTokens.identities[0]!.expiresAt, 9_999_000)
  t.same(restorePool(pool(), sealed, new TokenCipher('wrong')), { identities: 2, tokens: 0 }, 'a wrong key restores no token')
  t.same(restorePool(new IdentityPool([makeIdentity({ cookie: 'token=zzz' })], { now: () => 0 }), plain, undefined), { identities: 0, tokens: 0 }, 'unknown identities are ignored')
})

t.test('corrupt state is refused with a clear error', async (t) => {
  t.throws(() => restorePool(pool(), '{not json', undefined), CorruptStateError)
  t.throws(() => restorePool(pool(), '{"version":2}', undefined), CorruptStateError)
  t.throws(() => restorePool(pool(), '[]', undefined), CorruptStateError)
  const weird = JSON.stringify({ version: 1, identities: { [pool().identities[0]!.id]: { state: 'exploded', failures: 'many' } } })
  const p = pool()
  restorePool(p, weird, undefined)
  t.equal(p.health(p.identities[0]!).state, 'healthy', 'unknown values fall back to defaults')
  t.equal(p.health(p.identities[0]!).failures, 0)
})

t.test('the file store writes atomically and keeps the previous version', async (t) => {
  const dir = tmp()
  const store = new JsonStateFile(join(dir, 'nested', 'state.json'))
  t.equal(await store.load(), undefined)
  await store.save('one')
  t.equal(await store.load(), 'one')
  t.notOk(existsSync(join(dir, 'nested', 'state.json.bak')))
  await store.save('two')
  t.equal(await store.load(), 'two')
  t.equal(readFileSync(join(dir, 'nested', 'state.json.bak'), 'utf8'), 'one')
  t.same(readdirSync(join(dir, 'nested')).sort(), ['state.json', 'state.json.bak'], 'no temp file left behind')
})

t.test('the persister debounces bursts into one write', async (t) => {
  const saved: string[] = []
  let n = 0
  const p = new StatePersister({ load: async () => undefined, save: async (s) => { saved.push(s) } }, () => `v${++n}`, 20, () => {})
  p.schedule(); p.schedule(); p.schedule()
  await new Promise((r) => setTimeout(r, 60))
  t.same(saved, ['v1'])
  p.schedule()
  await p.flush()
  t.same(saved, ['v1', 'v2'], 'flush writes at once')
  await p.flush()
  t.same(saved, ['v1', 'v2'], 'nothing to write, nothing written')
  await p.flush(true)
  t.same(saved, ['v1', 'v2', 'v3'], 'a forced flush writes anyway (shutdown)')
  const errors: unknown[] = []
  const failing = new StatePersister({ load: async () => undefined, save: async () => { throw new Error('disk full') } }, () => 'x', 5, (e) => errors.push(e))
  failing.schedule()
  await failing.flush()
  t.equal(errors.length, 1, 'a failed save is reported, not thrown')
})

t.test('config.json token write-back keeps a backup (single-cookie deployments only)', async (t) => {
  const dir = tmp()
  const path = join(dir, 'config.json')
  const write = configTokenWriter(path, () => 1234)
  await write({ identity: 'u-1', token: 'new-token', singleCookie: true })
  t.notOk(existsSync(path), 'no config.json in use: nothing written')
  writeFileSync(path, JSON.stringify({ API_KEY: 'k', QWEN_TOKEN: 'old-token' }))
  await write({ identity: 'u-1', token: 'new-token', singleCookie: false })
  t.equal(JSON.parse(readFileSync(path, 'utf8')).QWEN_TOKEN, 'old-token', 'pools do not write config.json')
  await write({ identity: 'u-1', token: 'new-token', singleCookie: true })
  t.same(JSON.parse(readFileSync(path, 'utf8')), { API_KEY: 'k', QWEN_TOKEN: 'new-token' })
  t.equal(JSON.parse(readFileSync(`${path}.backup.1234`, 'utf8')).QWEN_TOKEN, 'old-token')
})

t.test('accounts and proxies in configuration', async (t) => {
  t.same(parseAccounts('ACCOUNTS', 'a@x.com:pw1|||b@x.com:p:w2 @proxy=http://127.0.0.1:3128\n# c@x.com:off\n'), [
    { email: 'a@x.com', password: 'pw1' },
    { email: 'b@x.com', password: 'p:w2', proxyUrl: 'http://127.0.0.1:3128' },
  ])
  t.throws(() => parseAccounts('ACCOUNTS', 'just-an-email@x.com'), ConfigError)
  t.same(parseCookies('"token=a; b=1" @proxy=http://h:1|||token=c'), ['token=a; b=1 @proxy=http://h:1', 'token=c'])
  const files = (m: Record<string, string>) => (p: string) => m[p]
  const c = loadConfig({ env: { BREAKER_DOWN_COOLDOWN_MS: '1000', STATE_SECRET: 'x' }, readFile: files({ 'accounts.txt': 'a@x.com:pw\n' }) })
  t.same(c.options.accounts, [{ email: 'a@x.com', password: 'pw' }])
  t.same(c.options.poolPolicy, { downCooldownMs: 1000 })
  t.equal(c.options.stateSecret, 'x')
  t.equal(c.stateFile, 'data/state.json')
  t.equal(loadConfig({ env: { STATE_FILE: '' }, readFile: files({}) }).stateFile, undefined, 'an empty STATE_FILE disables persistence')
  t.same(loadConfig({ env: { ACCOUNTS: 'e@x.com:p' }, readFile: files({ 'accounts.txt': 'f@x.com:q' }) }).options.accounts, [{ email: 'e@x.com', password: 'p' }], 'ACCOUNTS wins over accounts.txt')
})

t.test('withinGrace: waits for work, but never past the grace period', async (t) => {
  const { withinGrace } = await import('../src/grace.js')
  t.equal(await withinGrace(Promise.resolve(), 1000), true)
  t.equal(await withinGrace(Promise.reject(new Error('x')), 1000), true, 'a failure is settled too')
  const started = Date.now()
  t.equal(await withinGrace(new Promise(() => {}), 50), false)
  t.ok(Date.now() - started < 1000)
})
