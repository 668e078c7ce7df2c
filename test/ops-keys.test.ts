/**
 * Several API keys (DECISIONS "Several API keys"): names, the admin key, constant-time matching by
 * digest, and the name — never the key — in logs and metrics.
 */
import t from 'tap'
import { buildServer } from '../src/index.js'
import { ADMIN_KEY_NAME, KeyListError, KeyRing, hashName, parseKeyList } from '../src/keys.js'
import { resolveOptions } from '../src/options.js'
import { harness, postJson, startSim } from './helpers/setup.js'
import { logSink, until } from './helpers/log-sink.js'

const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

t.test('parseKeyList: named and unnamed keys, separators, refusals', async (t) => {
  t.same(parseKeyList('alice:sk-a|||bob:sk-b'), [{ name: 'alice', key: 'sk-a' }, { name: 'bob', key: 'sk-b' }])
  t.same(parseKeyList(' sk-plain \n\n ci:abc:def \r\n'), [{ name: hashName('sk-plain'), key: 'sk-plain' }, { name: 'ci', key: 'abc:def' }])
  t.match(hashName('sk-plain'), /^key-[0-9a-f]{8}$/)
  t.not(hashName('sk-plain'), hashName('sk-plain2'))
  // Not a name: the whole entry is the key.
  t.same(parseKeyList('has space:sk'), [{ name: hashName('has space:sk'), key: 'has space:sk' }])
  t.same(parseKeyList(':sk'), [{ name: hashName(':sk'), key: ':sk' }])
  t.same(parseKeyList('alice:'), [{ name: hashName('alice:'), key: 'alice:' }])
  t.same(parseKeyList(''), [])
  t.throws(() => parseKeyList('a:k1|||a:k2'), { name: 'KeyListError', message: /name a is used twice/ })
  t.throws(() => parseKeyList('a:k1|||b:k1'), { message: /repeats the key/ })
  t.throws(() => parseKeyList('a:k\u0007x'), { message: /control character/ })
  const e = new KeyListError('x')
  t.equal(e.source, 'apiKey')
})

t.test('KeyRing: matching, the admin key (default the first entry, or its own), open rings', async (t) => {
  const ring = new KeyRing('alice:sk-a|||bob:sk-b', undefined)
  t.ok(ring.enabled)
  t.same(ring.names, ['alice', 'bob'])
  t.equal(ring.match('sk-b')?.name, 'bob')
  t.equal(ring.match('sk-c'), undefined)
  t.equal(ring.match(undefined), undefined)
  t.ok(ring.isAdmin('sk-a'), 'the first entry is the admin key')
  t.notOk(ring.isAdmin('sk-b'))

  const own = new KeyRing('alice:sk-a', 'sk-root')
  t.same(own.names, ['alice', ADMIN_KEY_NAME])
  t.ok(own.isAdmin('sk-root'))
  t.notOk(own.isAdmin('sk-a'), 'with ADMIN_API_KEY the first entry is an ordinary key')
  t.equal(own.match('sk-root')?.name, 'admin', 'the admin key opens the API routes too')
  t.same(new KeyRing('alice:sk-a', 'ops:sk-root').names, ['alice', 'ops'], 'the admin key may be named')
  t.same(new KeyRing('alice:sk-a|||bob:sk-b', 'sk-b').admin?.name, 'bob', 'an admin key that is also an entry keeps its name')

  const open = new KeyRing(undefined, 'sk-root')
  t.notOk(open.enabled, 'API routes stay open without API_KEY')
  t.ok(open.isAdmin('sk-root'))
  const none = new KeyRing(undefined, undefined)
  t.equal(none.admin, undefined)
  t.notOk(none.isAdmin('anything'))
  t.equal(none.match('x'), undefined)

  t.throws(() => new KeyRing('admin:sk-a', 'sk-root'), { source: 'adminApiKey', message: /admin key's name admin/ })
  t.throws(() => new KeyRing('sk-a', 'sk\u0001'), { source: 'adminApiKey', message: /control character/ })
})

t.test('options: bad key lists and limits for unknown names stop registration, naming the option', async (t) => {
  t.throws(() => resolveOptions({ apiKey: 'a:1|||a:2' }), { name: 'OptionsError', option: 'apiKey' })
  t.throws(() => resolveOptions({ apiKey: 'admin:1', adminApiKey: 'x' }), { name: 'OptionsError', option: 'adminApiKey' })
  t.throws(() => resolveOptions({ apiKey: 'alice:1', keyLimits: { bob: { rpm: 1 } } }), { name: 'OptionsError', option: 'keyLimits.bob', message: /names: alice/ })
  t.throws(() => resolveOptions({ keyLimits: { bob: { rpm: 1 } } }), { option: 'keyLimits.bob', message: /names: anonymous/ })
  t.throws(() => resolveOptions({ keyLimits: { alice: { rpm: -1 } } }), { name: 'OptionsError', message: /keyLimits/ })
  t.throws(() => resolveOptions({ keyLimits: { alice: { burst: 1 } as never } }), { name: 'OptionsError', message: /keyLimits/ })
  t.same(resolveOptions({ apiKey: 'alice:1', keyLimits: { alice: { rpm: 3 } } }).keyLimits, { alice: { rpm: 3 } })
  t.same(resolveOptions({ keyLimits: { anonymous: { streams: 1 } } }).keyLimits, { anonymous: { streams: 1 } })
  const err = (() => { try { resolveOptions({ apiKey: 'a:sk-very-secret|||a:sk-other' }) } catch (e) { return e as Error } })()!
  t.notMatch(err.message, /sk-very-secret|sk-other/, 'the message never shows a key')
})

t.test('several keys: each opens the API, the admin key opens admin routes, names reach logs and metrics', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const sink = logSink()
  const app = await buildServer({
    qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie),
    apiKey: 'alice:sk-alice-0001|||bob:sk-bob-0002|||sk-unnamed-0003',
    adminApiKey: 'sk-root-0004',
  }, { logger: { level: 'info', stream: sink.stream } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const url = `${base}/v1/chat/completions`

  for (const key of ['sk-alice-0001', 'sk-bob-0002', 'sk-unnamed-0003', 'sk-root-0004']) {
    const r = await postJson(url, body, bearer(key))
    t.equal(r.status, 200, `${key.slice(0, 6)}… opens the API`)
    await r.text()
  }
  t.equal((await postJson(url, body, { 'x-api-key': 'sk-bob-0002' })).status, 200)
  const wrong = await postJson(url, body, bearer('sk-alice-0001x'))
  t.equal(wrong.status, 401)
  t.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'invalid_api_key')

  // Admin routes: only the admin key, even for the first listed key.
  t.equal((await postJson(`${base}/refresh-token`, {}, bearer('sk-alice-0001'))).status, 401)
  t.equal((await postJson(`${base}/refresh-token`, {}, bearer('sk-root-0004'))).status, 200)
  t.equal((await fetch(`${base}/metrics`, { headers: bearer('sk-bob-0002') })).status, 401)
  t.equal((await fetch(`${base}/metrics`)).status, 401, '/metrics is not public by default')
  const health = await (await fetch(`${base}/health`, { headers: bearer('sk-alice-0001') })).json() as { identities?: unknown }
  t.equal(health.identities, undefined, 'per-identity detail needs the admin key')
  const adminHealth = await (await fetch(`${base}/health`, { headers: bearer('sk-root-0004') })).json() as { identities?: unknown[] }
  t.equal(adminHealth.identities?.length, 1)

  const metrics = await fetch(`${base}/metrics`, { headers: bearer('sk-root-0004') })
  t.equal(metrics.status, 200)
  const text = await metrics.text()
  for (const name of ['alice', 'bob', hashName('sk-unnamed-0003'), 'admin']) {
    t.match(text, new RegExp(`qwen_requests_total\\{route="/v1/chat/completions",method="POST",status="200",model="qwen3-max",key="${name}"\\} \\d`), `${name} counted`)
  }
  t.match(text, /qwen_requests_total\{route="\/v1\/chat\/completions",method="POST",status="401",model="",key=""\} 1/, 'refused requests have no key name')

  await until(() => sink.lines().filter((l) => l.msg === 'completion').length >= 5)
  const completions = sink.lines().filter((l) => l.msg === 'completion')
  t.same(completions.map((l) => l.key).sort(), ['admin', 'alice', 'bob', 'bob', hashName('sk-unnamed-0003')].sort(), 'the access line names the key')
  const all = sink.raw.join('\n') + text
  for (const key of ['sk-alice-0001', 'sk-bob-0002', 'sk-unnamed-0003', 'sk-root-0004']) t.notOk(all.includes(key), `${key.slice(0, 6)}… never appears in logs or metrics`)
})

t.test('ADMIN_API_KEY without API_KEY: API routes stay open (anonymous), admin routes need the admin key', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { adminApiKey: 'sk-root' } })
  const r = await postJson(`${h.url}/v1/chat/completions`, body)
  t.equal(r.status, 200)
  t.equal((await postJson(`${h.url}/refresh-token`, {})).status, 401, 'even from loopback')
  t.equal((await postJson(`${h.url}/refresh-token`, {}, bearer('sk-root'))).status, 200)
  const text = await (await fetch(`${h.url}/metrics`, { headers: bearer('sk-root') })).text()
  t.match(text, /status="200",model="qwen3-max",key="anonymous"\} 1/)
  t.match(text, /route="\/refresh-token",method="POST",status="200",model="",key="admin"\} 1/)
})

t.test('no key at all: admin routes answer loopback callers, named anonymous', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  t.equal((await fetch(`${h.url}/metrics`)).status, 200)
  const remote = await h.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9' })
  t.equal(remote.statusCode, 403)
  t.match(await (await fetch(`${h.url}/metrics`)).text(), /route="\/metrics",method="GET",status="200",model="",key="anonymous"\} 1/)
})

t.test('client mode accepts any configured key (and the admin key) as its api_key part, and names it', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const h = await harness(t, { simulator: sim, gateway: { serverMode: false, cookies: [], apiKey: 'alice:sk-a|||bob:sk-b', adminApiKey: 'sk-root', metricsPublic: true } })
  const cookie = sim.accounts[0]!.cookie
  const url = `${h.url}/v1/chat/completions`
  for (const key of ['sk-a', 'sk-b', 'sk-root']) t.equal((await postJson(url, body, bearer(`${key};;${cookie}`))).status, 200, `${key} works`)
  t.equal((await postJson(url, body, bearer(`sk-c;;${cookie}`))).status, 401)
  const text = await (await fetch(`${h.url}/metrics`)).text()
  for (const name of ['alice', 'bob', 'admin']) t.match(text, new RegExp(`status="200",model="qwen3-max",key="${name}"\\} 1`))
})
