/** Persisted pool state (sealed tokens, salts, cookie hashes, the version-1 migration), and the config.json token write-back. */
import { createCipheriv, createHash, randomBytes, scryptSync } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildServer, type GatewayOptions } from '../src/index.js'
import type { SimAccount, Simulator } from '../src/simulator/index.js'
import { DEFAULT_POLICY, newHealth } from '../src/health.js'
import { MemoryStore } from '../src/store.js'
import { decodeJwt } from '../src/jwt.js'
import { parseAccounts, ConfigError, loadConfig, parseCookies } from '../src/config.js'
import { IdentityPool, makeIdentity } from '../src/pool.js'
import { configTokenWriter } from '../src/server.js'
import { postJson, startSim } from './helpers/setup.js'
import { CorruptStateError, JsonStateFile, StateKeys, StatePersister, TokenCipher, restorePool, serializePool } from '../src/state.js'

const tmp = () => mkdtempSync(join(tmpdir(), 'qg-state-'))

function pool (now = 1_000) {
  const a = makeIdentity({ cookie: 'token=aaa; secret_cookie=1' })
  const b = makeIdentity({ email: 'b@example.com', password: 'hunter2' })
  return new IdentityPool([a, b], { now: () => now })
}

t.test('the token cipher round-trips and rejects other keys, salts and identities', async (t) => {
  const c = new TokenCipher('s3cret', 'salt-1')
  const sealed = c.encrypt('eyJ.token.value', 'u-1')
  t.notMatch(sealed, /token/)
  t.equal(c.decrypt(sealed, 'u-1'), 'eyJ.token.value')
  t.equal(c.decrypt(sealed, 'u-2'), undefined, 'sealed for one identity, it does not open for another')
  t.equal(c.decrypt(sealed), undefined, 'nor without the identity')
  t.equal(new TokenCipher('other', 'salt-1').decrypt(sealed, 'u-1'), undefined)
  t.equal(new TokenCipher('s3cret', 'salt-2').decrypt(sealed, 'u-1'), undefined, 'the salt is part of the key')
  t.equal(c.decrypt('garbage', 'u-1'), undefined)
  t.equal(c.decrypt('a.b.c.d', 'u-1'), undefined)
})

t.test('a short GCM tag is refused', async (t) => {
  const c = new TokenCipher('s3cret', 'salt-1')
  const [iv, tag, body] = c.encrypt('eyJ.token.value', 'u-1').split('.') as [string, string, string]
  const short = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url')
  t.equal(c.decrypt([iv, short, body].join('.'), 'u-1'), undefined, 'a 4-byte tag (a prefix of the right one) does not decrypt')
  const fifteen = Buffer.from(tag, 'base64url').subarray(0, 15).toString('base64url')
  t.equal(c.decrypt([iv, fifteen, body].join('.'), 'u-1'), undefined, 'nor a 15-byte one')
  t.equal(c.decrypt([iv, tag, body].join('.'), 'u-1'), 'eyJ.token.value', 'the full tag does')
})

t.test('state round-trips without secrets; tokens only when sealed', async (t) => {
  const p = pool()
  const [a, b] = p.identities as [ReturnType<typeof makeIdentity>, ReturnType<typeof makeIdentity>]
  p.restore(a, { ...newHealth(), state: 'degraded', failures: 3, cooldownMs: 120_000, cooldownUntil: 121_000, rateLimitedUntil: 5_000, lastError: 'HTTP 500' })
  a.token = 'tok-a'
  a.expiresAt = 9_999_000
  b.token = 'tok-b'
  const plain = serializePool(p, new StateKeys(undefined), 1_000)
  for (const secret of ['secret_cookie', 'tok-a', 'tok-b', 'hunter2', 'token=aaa']) t.notOk(plain.includes(secret), `no ${secret} in the state`)
  t.notOk(plain.includes('"token"'), 'no token at all without a secret')
  const doc = JSON.parse(plain)
  t.equal(doc.version, 2)
  t.equal(Buffer.from(doc.salt, 'base64url').length, 16, 'a random 16-byte salt')
  t.type(doc.identities[a.id].cookieHash, 'string', 'a cookie identity keeps a hash of its cookie')
  t.equal(doc.identities[b.id].cookieHash, undefined, 'a sign-in account has no cookie to hash')
  const sealed = serializePool(p, new StateKeys('k'), 1_000)
  t.notOk(sealed.includes('tok-a'))

  const fresh = pool()
  const r = restorePool(fresh, plain, 'k')
  t.same([r.identities, r.tokens, r.migrated, r.cookieChanged], [2, 0, false, []])
  t.same(r.keys.salt, Buffer.from(doc.salt, 'base64url'), 'the file keeps its salt')
  const fa = fresh.identities[0]!
  const ha = fresh.health(fa)
  t.same([ha.state, ha.failures, ha.cooldownUntil, ha.rateLimitedUntil, ha.lastError, fa.token], ['degraded', 3, 121_000, 5_000, 'HTTP 500', undefined])
  const withTokens = pool()
  t.same(restorePool(withTokens, sealed, 'k').tokens, 2)
  t.equal(withTokens.identities[0]!.token, 'tok-a')
  t.equal(withTokens.identities[1]!.token, 'tok-b')
  t.equal(withTokens.identities[0]!.expiresAt, 9_999_000)
  t.equal(restorePool(pool(), sealed, 'wrong').tokens, 0, 'a wrong key restores no token')
  t.equal(restorePool(pool(), sealed, undefined).tokens, 0, 'no key restores no token')
  const other = restorePool(new IdentityPool([makeIdentity({ cookie: 'token=zzz' })], { now: () => 0 }), plain, undefined)
  t.same([other.identities, other.tokens], [0, 0], 'unknown identities are ignored')
})

t.test('a sealed token moved to another identity in the file does not open', async (t) => {
  const p = pool()
  const [a, b] = p.identities as [ReturnType<typeof makeIdentity>, ReturnType<typeof makeIdentity>]
  a.token = 'tok-a'
  b.token = 'tok-b'
  const doc = JSON.parse(serializePool(p, new StateKeys('k'), 1_000))
  const ta = doc.identities[a.id].token
  doc.identities[a.id].token = doc.identities[b.id].token
  doc.identities[b.id].token = ta
  const fresh = pool()
  t.equal(restorePool(fresh, JSON.stringify(doc), 'k').tokens, 0)
  t.same(fresh.identities.map((i) => i.token), [undefined, undefined], 'neither identity got the other one\'s token')
})

t.test('every file gets a salt of its own', async (t) => {
  const p = pool()
  p.identities[0]!.token = 'tok-a'
  const one = JSON.parse(serializePool(p, new StateKeys('same secret'), 1_000))
  const two = JSON.parse(serializePool(p, new StateKeys('same secret'), 1_000))
  t.not(one.salt, two.salt, 'two files written with the same secret have different salts')
  const id = p.identities[0]!.id
  t.not(one.identities[id].cookieHash, two.identities[id].cookieHash, 'the cookie hash is keyed with the salt')
  t.not(one.identities[id].token, two.identities[id].token)
  // A token sealed in one file does not open with the other file's key.
  const mixed = { ...two, identities: { ...two.identities, [id]: { ...two.identities[id], token: one.identities[id].token } } }
  t.equal(restorePool(pool(), JSON.stringify(mixed), 'same secret').tokens, 0)
  t.equal(restorePool(pool(), JSON.stringify(one), 'same secret').tokens, 1)
})

/** A version-1 state document, sealed the way the gateway sealed tokens before version 2. */
function v1Document (secret: string, identities: Record<string, Record<string, unknown> & { plainToken?: string }>): string {
  const key = scryptSync(secret, 'qwen-gateway state v1', 32)
  const seal = (plain: string): string => {
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', key, iv)
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()])
    return [iv, c.getAuthTag(), body].map((b) => b.toString('base64url')).join('.')
  }
  const out: Record<string, unknown> = {}
  for (const [id, { plainToken, ...rest }] of Object.entries(identities)) out[id] = { ...rest, ...(plainToken ? { token: seal(plainToken) } : {}) }
  return JSON.stringify({ version: 1, savedAt: new Date(0).toISOString(), identities: out })
}

t.test('a version-1 file is read once: health and tokens restored, marked for rewriting', async (t) => {
  const p = pool()
  const [a, b] = p.identities as [ReturnType<typeof makeIdentity>, ReturnType<typeof makeIdentity>]
  const text = v1Document('k', {
    [a.id]: { state: 'degraded', failures: 3, cooldownMs: 120_000, cooldownUntil: 121_000, rateLimits: 0, challenges: 1, challengedUntil: 700_000, expiresAt: 9_999_000, plainToken: 'tok-a' },
    [b.id]: { state: 'healthy', failures: 0, cooldownMs: 0, rateLimits: 2, rateLimitedUntil: 50_000, challenges: 0, plainToken: 'tok-b' },
  })
  const r = restorePool(p, text, 'k')
  t.same([r.identities, r.tokens, r.migrated, r.cookieChanged], [2, 2, true, []])
  t.same([a.token, a.expiresAt, b.token], ['tok-a', 9_999_000, 'tok-b'])
  const ha = p.health(a)
  t.same([ha.state, ha.failures, ha.cooldownUntil, ha.challengedUntil, ha.challenges], ['degraded', 3, 121_000, 700_000, 1], 'no cookie hash in version 1: the challenge stays')
  t.same([p.health(b).rateLimitedUntil, p.health(b).rateLimits], [50_000, 2])
  t.not(r.keys.salt.toString('base64url'), '', 'written again with a fresh salt')
  const again = JSON.parse(serializePool(p, r.keys, 2_000))
  t.equal(again.version, 2)
  t.same(restorePool(pool(), JSON.stringify(again), 'k').tokens, 2, 'the rewritten file restores its tokens')
  t.equal(restorePool(pool(), text, undefined).tokens, 0, 'without the secret a version-1 file restores health only')
})

t.test('a changed cookie clears the challenge and the refused-credential flag, and drops the saved token', async (t) => {
  // The account's id comes from the user id in its session token, so a new cookie is the same account.
  const jwt = ['{"alg":"none"}', '{"id":"user-1"}', 'sig'].map((x) => Buffer.from(x).toString('base64url')).join('.')
  const cookie = `token=${jwt}; secret_cookie=1`
  const p = new IdentityPool([makeIdentity({ cookie })], { now: () => 1_000 })
  const a = p.identities[0]!
  p.restore(a, { ...newHealth(), state: 'degraded', failures: 3, cooldownMs: 120_000, cooldownUntil: 121_000, rateLimitedUntil: 50_000, rateLimits: 1, challengedUntil: 600_000, challenges: 2, authRefused: true, lastError: 'challenge' })
  a.token = 'tok-a'
  const text = serializePool(p, new StateKeys('k'), 1_000)
  t.notOk(text.includes('secret_cookie'), 'the cookie itself is never saved')

  const same = new IdentityPool([makeIdentity({ cookie })], { now: () => 1_000 })
  const rs = restorePool(same, text, 'k')
  t.same([rs.cookieChanged, rs.tokens], [[], 1])
  t.same([same.health(same.identities[0]!).challengedUntil, same.health(same.identities[0]!).authRefused], [600_000, true], 'same cookie: still challenged')

  const changed = new IdentityPool([makeIdentity({ cookie: cookie + '; fresh=1' })], { now: () => 1_000 })
  const c = changed.identities[0]!
  t.equal(c.id, a.id, 'the same account')
  const rc = restorePool(changed, text, 'k')
  t.same([rc.cookieChanged, rc.tokens, c.token], [[c.label], 0, undefined], 'the old token is not used')
  const h = changed.health(c)
  t.same([h.challengedUntil, h.challenges, h.authRefused], [undefined, 0, false], 'challenge and refusal cleared')
  t.same([h.state, h.failures, h.cooldownUntil, h.rateLimitedUntil, h.rateLimits, h.lastError], ['degraded', 3, 121_000, 50_000, 1, 'challenge'], 'the rest of the health is kept')

  const noSecret = new IdentityPool([makeIdentity({ cookie: cookie + '; fresh=1' })], { now: () => 1_000 })
  const rn = restorePool(noSecret, serializePool(p, new StateKeys(undefined), 1_000), undefined)
  t.same(rn.cookieChanged, [noSecret.identities[0]!.label], 'noticed without STATE_SECRET too')
  t.equal(noSecret.health(noSecret.identities[0]!).challengedUntil, undefined)
})

t.test('corrupt state is refused with a clear error', async (t) => {
  t.throws(() => restorePool(pool(), '{not json', undefined), CorruptStateError)
  t.throws(() => restorePool(pool(), '{"version":3,"identities":{}}', undefined), CorruptStateError)
  t.throws(() => restorePool(pool(), '{"version":2}', undefined), CorruptStateError)
  t.throws(() => restorePool(pool(), '{"version":2,"identities":{}}', undefined), CorruptStateError, 'version 2 needs its salt')
  t.throws(() => restorePool(pool(), '{"version":2,"salt":"c2hvcnQ","identities":{}}', undefined), CorruptStateError, 'a salt too short')
  t.throws(() => restorePool(pool(), '[]', undefined), CorruptStateError)
  t.throws(() => restorePool(pool(), 'null', undefined), CorruptStateError)
  const weird = JSON.stringify({ version: 2, salt: randomBytes(16).toString('base64url'), identities: { [pool().identities[0]!.id]: { state: 'exploded', failures: 'many', cookieHash: 7, token: 5 } } })
  const p = pool()
  restorePool(p, weird, 'k')
  t.equal(p.health(p.identities[0]!).state, 'healthy', 'unknown values fall back to defaults')
  t.equal(p.health(p.identities[0]!).failures, 0)
})

/** A gateway over real sockets against the simulator, its log lines collected. */
async function gateway (t: Teardown, sim: Simulator, opts: GatewayOptions): Promise<{ app: FastifyInstance; url: string; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const app = await buildServer({ qwenBaseUrl: sim.url, stateDebounceMs: 10, ...opts }, {
    logger: { level: 'info', stream: { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>) } } },
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const addr = app.server.address()
  return { app, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, lines }
}

interface Teardown { teardown: (fn: () => unknown) => void }

/** The pool id of a simulator account (from the user id in its JWT). */
const idOf = (simAccountId: string): string => 'u-' + createHash('sha256').update(simAccountId).digest('hex').slice(0, 12)
const AUTHS = '/api/v1/auths/'
const COMPLETIONS = '/api/v2/chat/completions'

async function complete (url: string): Promise<{ status: number; code: string | undefined }> {
  const res = await postJson(`${url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  const j = await res.json() as { error?: { code: string } }
  return { status: res.status, code: j.error?.code }
}

t.test('the gateway rewrites a version-1 state file as version 2 right after restoring it', async (t) => {
  const dir = tmp()
  const path = join(dir, 'state.json')
  const sim = await startSim(t, { demoAccounts: 2 })
  const [a, b] = sim.accounts as [SimAccount, SimAccount]
  const session = (x: SimAccount): string => /token=([^;]+)/.exec(x.cookie)![1]!
  const v1 = v1Document('s3cret', {
    [idOf(a.id)]: { state: 'healthy', failures: 2, cooldownMs: 0, rateLimits: 0, challenges: 0, lastError: 'HTTP 500', expiresAt: decodeJwt(session(a))!.expiresAt, plainToken: session(a) },
    [idOf(b.id)]: { state: 'healthy', failures: 0, cooldownMs: 0, rateLimits: 0, challenges: 0, expiresAt: decodeJwt(session(b))!.expiresAt, plainToken: session(b) },
  })
  writeFileSync(path, v1)
  const g = await gateway(t, sim, { cookies: [a.cookie, b.cookie], stateFile: new JsonStateFile(path), stateSecret: 's3cret' })
  t.same(sim.log().filter((e) => e.path.startsWith(AUTHS)), [], 'the version-1 tokens were restored: no token fetched')
  const ia = g.app.qwenPool.get(idOf(a.id))!
  t.same([g.app.qwenPool.health(ia).failures, g.app.qwenPool.health(ia).lastError], [2, 'HTTP 500'], 'health restored')
  t.ok(g.lines.some((l) => l.msg === 'identity pool state restored' && l.migrated === true && l.tokens === 2))

  const text = readFileSync(path, 'utf8')
  const doc = JSON.parse(text)
  t.equal(doc.version, 2, 'rewritten at start, before any change or shutdown')
  t.equal(Buffer.from(doc.salt, 'base64url').length, 16)
  t.equal(readFileSync(`${path}.bak`, 'utf8'), v1, 'the version-1 file is the backup')
  for (const x of [a, b]) {
    t.notOk(text.includes(session(x)), 'no plain token')
    t.notOk(text.includes(x.cookie), 'no cookie')
    t.type(doc.identities[idOf(x.id)].token, 'string', 'the token is sealed again')
    t.type(doc.identities[idOf(x.id)].cookieHash, 'string')
  }
  t.equal((await complete(g.url)).status, 200)
  await g.app.close()

  // The rewritten file opens with its own salt and the identity bound to each token.
  sim.clearLog()
  const g2 = await gateway(t, sim, { cookies: [a.cookie, b.cookie], stateFile: new JsonStateFile(path), stateSecret: 's3cret' })
  t.same(sim.log().filter((e) => e.path.startsWith(AUTHS)), [], 'version-2 tokens restored')
  t.ok(g2.lines.some((l) => l.msg === 'identity pool state restored' && l.migrated === undefined && l.tokens === 2))
  t.equal(JSON.parse(readFileSync(path, 'utf8')).salt, doc.salt, 'a version-2 file keeps its salt')
  await g2.app.close()
})

t.test('a restart with a changed cookie brings a challenged account back; the same cookie does not', async (t) => {
  const dir = tmp()
  const path = join(dir, 'state.json')
  const sim = await startSim(t, { demoAccounts: 1 })
  const a = sim.accounts[0]!
  const opts = { stateFile: new JsonStateFile(path), stateSecret: 's3cret' }

  const g1 = await gateway(t, sim, { ...opts, cookies: [a.cookie] })
  sim.queue(a.email, { fail: 'challenge_json' })
  t.same(await complete(g1.url), { status: 503, code: 'upstream_challenge' })
  await g1.app.close()
  const saved = JSON.parse(readFileSync(path, 'utf8'))
  t.ok(saved.identities[idOf(a.id)].challengedUntil > Date.now(), 'the challenge cooldown is saved')
  t.notOk(readFileSync(path, 'utf8').includes(a.cookie), 'the cookie is not saved')

  sim.clearLog()
  const g2 = await gateway(t, sim, { ...opts, cookies: [a.cookie] })
  t.same(await complete(g2.url), { status: 503, code: 'upstream_challenge' }, 'same cookie: still challenged')
  t.same(sim.log().filter((e) => e.path === COMPLETIONS || e.path.startsWith(AUTHS)), [], 'the upstream is left alone; the saved token was restored')
  t.notOk(g2.lines.some((l) => /cookie changed/.test(String(l.msg))))
  await g2.app.close()

  // The operator passed the check in a browser and pasted the account's new cookie.
  sim.clearLog()
  const fresh = `${a.cookie}; passed_check=1`
  const g3 = await gateway(t, sim, { ...opts, cookies: [fresh] })
  t.equal(g3.app.qwenPool.identities[0]!.id, idOf(a.id), 'the same account')
  const notes = g3.lines.filter((l) => /cookie changed/.test(String(l.msg)))
  t.equal(notes.length, 1, 'one info line')
  t.equal(notes[0]!.level, 30)
  t.equal(notes[0]!.identity, g3.app.qwenPool.identities[0]!.label, 'naming the identity')
  t.notOk(JSON.stringify(g3.lines).includes(fresh), 'never the cookie')
  t.same(sim.log().filter((e) => e.path.startsWith(AUTHS)).map((e) => e.account), [a.email], 'the old sealed token is not used: a token is fetched with the new cookie')
  t.equal(JSON.parse(readFileSync(path, 'utf8')).identities[idOf(a.id)].challengedUntil, undefined, 'the cleared challenge is saved at once')
  t.same(await complete(g3.url), { status: 200, code: undefined }, 'served')
  await g3.app.close()
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
  const write = configTokenWriter(path)
  await write({ identity: 'u-1', token: 'new-token', singleCookie: true })
  t.notOk(existsSync(path), 'no config.json in use: nothing written')
  writeFileSync(path, JSON.stringify({ API_KEY: 'k', QWEN_TOKEN: 'old-token' }))
  await write({ identity: 'u-1', token: 'new-token', singleCookie: false })
  t.equal(JSON.parse(readFileSync(path, 'utf8')).QWEN_TOKEN, 'old-token', 'pools do not write config.json')
  await write({ identity: 'u-1', token: 'new-token', singleCookie: true })
  t.same(JSON.parse(readFileSync(path, 'utf8')), { API_KEY: 'k', QWEN_TOKEN: 'new-token' })
  t.equal(JSON.parse(readFileSync(`${path}.backup`, 'utf8')).QWEN_TOKEN, 'old-token')
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

t.test('an identity disabled by the operator stays disabled across a restart; when every account is disabled the 503 says so', async (t) => {
  const p = pool()
  const [a, b] = p.identities as [ReturnType<typeof makeIdentity>, ReturnType<typeof makeIdentity>]
  a.token = 'tok-a'
  b.token = 'tok-b'
  let saves = 0
  const store = new MemoryStore(DEFAULT_POLICY).identities
  const watched = new IdentityPool([a, b], { now: () => 1_000, store, onChange: () => { saves++ } })
  store.setDisabled(a.id, true)
  t.ok(saves > 0, 'disabling schedules a save')
  const text = serializePool(watched, new StateKeys(undefined), 1_000)
  t.equal(JSON.parse(text).identities[a.id].disabled, true)
  t.equal(JSON.parse(text).identities[b.id].disabled, undefined, 'an enabled identity saves no flag')
  const fresh = pool()
  restorePool(fresh, text, undefined)
  t.equal(fresh.health(fresh.identities[0]!).disabled, true, 'restored disabled')
  t.notOk(fresh.health(fresh.identities[1]!).disabled)

  store.setDisabled(b.id, true)
  const err = watched.exhausted()
  t.equal(err.kind, 'no_identity')
  t.match(err.message, /every account is disabled by the operator/)
  store.setDisabled(b.id, false)
  t.notMatch(watched.exhausted().message, /disabled by the operator/, 'not while another account is enabled')
  watched.close()
})
