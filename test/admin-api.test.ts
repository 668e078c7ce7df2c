/** The dashboard's JSON API over real sockets: auth, masking (no secret in any response), actions, runtime accounts, live events. */
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { harness, postJson, startSim } from './helpers/setup.js'
import { openAccount } from '../src/admin/seal.js'

const KEY = 'sk-admin-test-0123456789'
const USER_KEY = 'sk-user-test-9876543210'
const SECRET = 'state-secret-for-tests'
const H = { authorization: `Bearer ${KEY}` }

/** Every secret a response must never contain: keys, cookies, tokens, passwords, full e-mails. */
function secretsOf (h: Awaited<ReturnType<typeof harness>>, extra: string[] = []): string[] {
  const out = [KEY, USER_KEY, SECRET, ...extra]
  for (const a of h.sim.accounts) out.push(a.cookie, a.password, a.email, a.cookie.split(';')[0]!.replace('token=', ''), createHash('sha256').update(a.password).digest('hex'))
  for (const i of h.app.qwenPool.identities) if (i.token) out.push(i.token)
  return out.filter((s) => s.length >= 8)
}

function noSecrets (t: Test, label: string, text: string, secrets: string[]): void {
  const leaked = secrets.filter((s) => text.includes(s))
  t.same(leaked.map((s) => s.slice(0, 4) + '…'), [], `${label}: no secret in the response`)
}

async function get (url: string, headers: Record<string, string> = H): Promise<{ status: number; text: string; json: any; headers: Headers }> {
  const r = await fetch(url, { headers })
  const text = await r.text()
  let json: unknown
  try { json = JSON.parse(text) } catch {}
  return { status: r.status, text, json, headers: r.headers }
}

async function post (url: string, body?: unknown, headers: Record<string, string> = H): Promise<{ status: number; text: string; json: any }> {
  const r = body === undefined ? await fetch(url, { method: 'POST', headers }) : await postJson(url, body, headers)
  const text = await r.text()
  return { status: r.status, text, json: JSON.parse(text) }
}

const chat = (url: string, content = 'hi', headers = { authorization: `Bearer ${USER_KEY}` }) =>
  postJson(`${url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content }] }, headers)

t.test('auth, masking, state and the request log', async (t) => {
  const sim = await startSim(t, { demoAccounts: 3 })
  // Two configured: a cookie and a sign-in account.
  const h2 = await harness(t, { simulator: sim, gateway: { cookies: [sim.accounts[0]!.cookie], accounts: [{ email: sim.accounts[1]!.email, password: sim.accounts[1]!.password }], apiKey: USER_KEY, adminApiKey: KEY, stateSecret: SECRET } })
  const url = h2.url
  const secrets = () => secretsOf(h2)

  t.equal((await get(`${url}/admin/api/state`, {})).status, 401, 'no key: 401')
  t.equal((await get(`${url}/admin/api/state`, { authorization: `Bearer ${USER_KEY}` })).status, 401, 'an API key that is not the admin key: 401')
  const wrong = await get(`${url}/admin/api/state`, { authorization: 'Bearer nope' })
  t.same([wrong.json.error.type, wrong.json.error.code], ['invalid_request_error', 'invalid_api_key'], 'the OpenAI error envelope')

  const s = await get(`${url}/admin/api/state`)
  t.equal(s.status, 200)
  t.equal(s.headers.get('cache-control'), 'no-store')
  t.match(s.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  t.equal(s.headers.get('referrer-policy'), 'no-referrer')
  t.equal(s.json.identities.length, 2)
  t.same(s.json.counts, { total: 2, healthy: 2, degraded: 0, down: 0, cooldown: 0, disabled: 0, no_token: 0 })
  t.equal(s.json.accountsPersistent, false, 'the in-memory store does not outlive a restart')
  t.equal(s.json.storeMode, 'memory')
  const account = s.json.identities.find((i: any) => i.kind === 'account')
  const email = sim.accounts[1]!.email
  t.equal(account.label, `${email[0]}***${email.slice(email.indexOf('@'))} (account 1)`, 'e-mail masked as a***@example.com')
  t.ok(s.json.identities.every((i: any) => typeof i.tokenExpiresAt === 'number' && i.tokenExpiresAt > s.json.serverTime), 'absolute token expiries')
  noSecrets(t, 'state', s.text, secrets())

  t.equal((await chat(url)).status, 200)
  sim.queue(sim.accounts[0]!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  sim.queue(email, { fail: 'rate_limited', rateLimitHours: 1 })
  // Round robin: the next request may meet either first; both are limited, so it fails over then gives up.
  const limited = await chat(url, 'again')
  t.equal(limited.status, 429)
  await new Promise((r) => setTimeout(r, 50))
  const reqs = await get(`${url}/admin/api/requests`)
  t.equal(reqs.status, 200)
  t.equal(reqs.json.requests.length, 2, 'both completions recorded, newest first')
  const [last, first] = reqs.json.requests
  t.equal(first.status, 200)
  t.equal(first.model, 'qwen3-max')
  t.equal(first.key, 'key-' + createHash('sha256').update(USER_KEY).digest('hex').slice(0, 8), 'the key name, never the key')
  t.ok(first.identity && h2.app.qwenPool.get(first.identity), 'the identity id that answered')
  t.ok(first.tokensOut > 0)
  t.equal(last.status, 429)
  t.equal(last.tried.length, 2, 'both identities tried on failover')
  t.equal(last.error, 'insufficient_quota', 'the error code the client got, not its message')
  t.equal(first.error, null)
  t.notOk(reqs.text.includes('again'), 'no prompt text')
  noSecrets(t, 'requests', reqs.text, secrets())
  t.equal((await get(`${url}/admin/api/requests?status=ok`)).json.requests.length, 1)
  t.equal((await get(`${url}/admin/api/requests?status=error&model=qwen3-max`)).json.requests.length, 1)
  t.equal((await get(`${url}/admin/api/requests?identity=${first.identity}`)).json.requests.length >= 1, true)
  t.equal((await get(`${url}/admin/api/requests?limit=0`)).status, 400, 'bad query: 400')

  const st = await get(`${url}/admin/api/state`)
  t.same(st.json.identities.map((i: any) => i.status), ['cooldown', 'cooldown'], 'rate limited: cooldown')
  t.ok(st.json.identities.every((i: any) => i.cooldownUntil > st.json.serverTime))
  const health = await get(`${url}/health`)
  t.same(health.json.identities.map((i: any) => [i.id, i.status]), st.json.identities.map((i: any) => [i.id, i.status]), '/health speaks the same vocabulary')
})

t.test('identity actions, disable keeps traffic away, runtime accounts sealed and restored', async (t) => {
  const sim = await startSim(t, { demoAccounts: 3 })
  const h = await harness(t, { simulator: sim, gateway: { cookies: sim.accounts.slice(0, 2).map((a) => a.cookie), apiKey: KEY, stateSecret: SECRET } })
  const url = h.url
  const [a, b] = h.app.qwenPool.identities
  const secrets = (extra: string[] = []) => secretsOf(h, extra)

  const notFound = await post(`${url}/admin/api/identities/nope/reset`)
  t.equal(notFound.status, 404)
  t.equal(notFound.json.error.code, 'identity_not_found')

  const dis = await post(`${url}/admin/api/identities/${a!.id}/disable`)
  t.equal(dis.status, 200)
  t.equal(dis.json.identity.status, 'disabled')
  t.equal(dis.json.identity.blockedBy, 'disabled')
  for (let k = 0; k < 4; k++) t.equal((await chat(url, 'x', H)).status, 200)
  await new Promise((r) => setTimeout(r, 50))
  const served = (await get(`${url}/admin/api/requests`)).json.requests.map((r: any) => r.identity)
  t.same([...new Set(served)], [b!.id], 'a disabled identity serves nothing')
  const metrics = await (await fetch(`${url}/metrics`, { headers: H })).text()
  t.match(metrics, /qwen_identities_blocked\{reason="disabled"\} 1/)
  t.equal((await get(`${url}/health`)).json.identities.find((i: any) => i.id === a!.id).status, 'disabled')
  const en = await post(`${url}/admin/api/identities/${a!.id}/enable`)
  t.equal(en.json.identity.status, 'healthy')

  const ref = await post(`${url}/admin/api/identities/${a!.id}/refresh`)
  t.equal(ref.json.ok, true)
  const test = await post(`${url}/admin/api/identities/${a!.id}/test`)
  t.equal(test.json.ok, true, test.json.message)
  t.type(test.json.latencyMs, 'number')
  sim.queue(sim.accounts[1]!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  await chat(url, 'x', H)
  await chat(url, 'x', H)
  t.equal((await get(`${url}/admin/api/state`)).json.identities.find((i: any) => i.id === b!.id).status, 'cooldown')
  const reset = await post(`${url}/admin/api/identities/${b!.id}/reset`)
  t.equal(reset.json.identity.status, 'healthy', 'reset clears the cooldown')

  // Runtime accounts.
  const third = sim.accounts[2]!
  const bad = await post(`${url}/admin/api/accounts`, { accounts: '# only a comment\n' })
  t.equal(bad.status, 400)
  t.equal((await post(`${url}/admin/api/accounts`, { nope: 1 })).status, 400)
  const added = await post(`${url}/admin/api/accounts`, { accounts: `${third.email}:${third.password}\nnot an account\n${sim.accounts[0]!.cookie}` })
  t.equal(added.status, 200)
  t.same(added.json.results.map((r: any) => [r.line, r.ok]), [[1, true], [2, false], [3, false]], 'one added, one unreadable, one already configured')
  t.match(added.json.results[1].error, /line 2 is neither a cookie/)
  t.match(added.json.results[2].error, /already in the pool/)
  t.equal(added.json.persistent, false, 'sealed in the in-memory store: gone at restart (no REDIS_URL)')
  noSecrets(t, 'add', added.text, secrets())
  const newId = added.json.results[0].id
  const list = await get(`${url}/admin/api/accounts`)
  t.same(list.json.accounts.map((x: any) => [x.id, x.status]), [[newId, 'healthy']])
  t.equal(list.json.accounts[0].label, `${third.email[0]}***@sim.local (runtime)`)
  noSecrets(t, 'accounts', list.text, secrets())
  const stored = await h.app.qwenStore.accounts.list()
  t.equal(stored.length, 1, 'stored in qwenStore.accounts')
  t.notOk(stored[0]!.sealed.includes(third.password) || stored[0]!.sealed.includes(third.email), 'sealed, not in clear')

  // The new account serves: disable the two configured ones.
  await post(`${url}/admin/api/identities/${a!.id}/disable`)
  await post(`${url}/admin/api/identities/${b!.id}/disable`)
  t.equal((await chat(url, 'x', H)).status, 200)
  await new Promise((r) => setTimeout(r, 50))
  t.equal((await get(`${url}/admin/api/requests?limit=1`)).json.requests[0].identity, newId, 'the runtime account answered')

  const ro = await fetch(`${url}/admin/api/accounts/${a!.id}`, { method: 'DELETE', headers: H })
  t.equal(ro.status, 409, 'configured accounts are read-only')
  t.equal((await fetch(`${url}/admin/api/accounts/unknown`, { method: 'DELETE', headers: H })).status, 404)

  // What a restart finds in the store opens with the same secret into the same identity, and not with another.
  const [rec] = await h.app.qwenStore.accounts.list()
  t.same(openAccount(SECRET, newId, rec!.sealed), { email: third.email, password: third.password })
  t.equal(openAccount('another secret', newId, rec!.sealed), undefined)
  t.equal(openAccount(SECRET, 'another-id', rec!.sealed), undefined, 'bound to its identity id')
  const del = await fetch(`${url}/admin/api/accounts/${newId}`, { method: 'DELETE', headers: H })
  t.equal(del.status, 200)
  t.equal((await h.app.qwenStore.accounts.list()).length, 0)
  t.notOk(h.app.qwenPool.get(newId), 'removed from the pool')
  const all = await get(`${url}/admin/api/state`)
  noSecrets(t, 'state after actions', all.text, secrets())
  t.equal((await fetch(`${url}/openapi.json`)).status, 200)
  const doc = await (await fetch(`${url}/openapi.json`, { headers: H })).json() as any
  for (const p of ['/admin/api/state', '/admin/api/events', '/admin/api/requests', '/admin/api/accounts', '/admin/api/accounts/{id}', '/admin/api/identities/{id}/disable']) t.ok(doc.paths[p], `${p} in the OpenAPI document`)
  t.notOk(doc.paths['/admin/'], 'the page itself is not')
})

t.test('no key: loopback only; the first API_KEY is the admin key; rate limit per address; ADMIN_UI=false; live events', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const open = await harness(t, { simulator: sim })
  t.equal((await get(`${open.url}/admin/api/state`, {})).status, 200, 'no key configured: a loopback caller gets in')
  t.equal((await get(`${open.url}/admin/`, {})).status, 200)

  const first = await harness(t, { simulator: sim, gateway: { apiKey: `${KEY}|||${USER_KEY}`, adminRateLimitRpm: 5 } })
  t.equal((await get(`${first.url}/admin/api/state`)).status, 200, 'the first API_KEY entry is the admin key')
  t.equal((await get(`${first.url}/admin/api/state`, { authorization: `Bearer ${USER_KEY}` })).status, 401)
  const statuses: number[] = []
  for (let k = 0; k < 5; k++) statuses.push((await get(`${first.url}/admin/api/state`, { authorization: 'Bearer guess', 'x-forwarded-for': `10.0.0.${k}` })).status)
  t.same(statuses, [401, 401, 401, 429, 429], 'wrong keys count; X-Forwarded-For does not get around the limit')
  const limited = await get(`${first.url}/admin/api/state`)
  t.equal(limited.json.error.code, 'rate_limit_exceeded')
  t.ok(Number(limited.headers.get('retry-after')) >= 1)

  const off = await harness(t, { simulator: sim, gateway: { apiKey: KEY, adminUi: false } })
  t.equal((await get(`${off.url}/admin/api/state`)).status, 404, 'ADMIN_UI=false: no API')
  t.equal((await get(`${off.url}/admin/`)).status, 404, 'ADMIN_UI=false: no page')
  t.equal(off.app.hasDecorator('qwenAdmin'), false)

  const live = await harness(t, { simulator: sim, gateway: { apiKey: KEY } })
  const ctl = new AbortController()
  t.teardown(() => ctl.abort())
  const res = await fetch(`${live.url}/admin/api/events`, { headers: H, signal: ctl.signal })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/event-stream/)
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  const until = async (re: RegExp): Promise<string> => {
    const deadline = Date.now() + 3000
    while (!re.test(buf)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in ${buf.slice(0, 200)}`)
      const { value, done } = await reader.read()
      if (done) break
      buf += value
    }
    return buf
  }
  await until(/event: state\ndata: .*"identities"/)
  buf = ''
  const id = live.app.qwenPool.identities[0]!.id
  await post(`${live.url}/admin/api/identities/${id}/disable`)
  const got = await until(/"status":"disabled"/)
  t.match(got, /event: state/, 'a state change arrives live')
  buf = ''
  await post(`${live.url}/admin/api/identities/${id}/enable`)
  t.equal((await chat(live.url, 'hi', H)).status, 200)
  const ev = await until(/event: request\ndata: (.*)\n/)
  const rec = JSON.parse(/event: request\ndata: (.*)\n/.exec(ev)![1]!)
  t.equal(rec.identity, id)
  t.equal(rec.status, 200)
  // close() ends the open stream instead of waiting for the client.
  const started = Date.now()
  await live.app.close()
  t.ok(Date.now() - started < 2000, 'close does not wait for the live stream')
  let late = false
  live.app.qwenAdmin.attach({ send: () => {}, close: () => { late = true } })()
  await new Promise((r) => setImmediate(r))
  t.ok(late, 'a stream that opens while the app closes is ended at once')
})

t.test('embedded under a prefix', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const Fastify = (await import('fastify')).default
  const qwenGateway = (await import('../src/index.js')).default
  const host = Fastify({ logger: false })
  await host.register(qwenGateway, { prefix: '/qwen', qwenBaseUrl: sim.url, cookies: sim.accounts.map((a) => a.cookie), apiKey: KEY })
  t.teardown(() => host.close())
  await host.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(host.server.address() as { port: number }).port}/qwen`
  const page = await get(`${base}/admin/`, {})
  t.equal(page.status, 200)
  t.match(page.headers.get('content-security-policy'), /script-src 'self' 'sha256-/)
  t.match(page.text, /<script type="importmap">/)
  const redirect = await fetch(`${base}/admin`, { redirect: 'manual' })
  t.equal(redirect.headers.get('location'), '/qwen/admin/')
  for (const f of ['vendor/preact.mjs', 'vendor/hooks.mjs', 'vendor/htm.mjs', 'app.css', 'js/main.js']) {
    const r = await fetch(`${base}/admin/${f}`)
    t.equal(r.status, 200, f)
    await r.arrayBuffer()
  }
  t.equal((await fetch(`${base}/admin/vendor/package.json`)).status, 404, 'only the three vendor modules')
  t.equal((await fetch(`${base}/admin/index.html`)).status, 404, 'the page only at /admin/')
  t.equal((await get(`${base}/admin/api/state`)).status, 200)
})

t.test('refusals: a non-loopback caller without any key, client mode, failed actions', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const open = await harness(t, { simulator: sim })
  const far = await open.app.inject({ method: 'GET', url: '/admin/api/state', remoteAddress: '203.0.113.9' })
  t.equal(far.statusCode, 403, 'no key configured: only loopback callers')
  t.equal(far.json().error.code, 'forbidden')
  const near = await open.app.inject({ method: 'GET', url: '/admin/api/state', remoteAddress: '127.0.0.1' })
  t.equal(near.statusCode, 200)

  const client = await harness(t, { simulator: sim, gateway: { apiKey: KEY, serverMode: false, cookies: [] } })
  const r = await post(`${client.url}/admin/api/accounts`, { accounts: 'token=x' })
  t.equal(r.status, 409, 'client mode has no pool to add to')

  const h = await harness(t, { simulator: sim, gateway: { apiKey: KEY } })
  const id = h.app.qwenPool.identities[0]!.id
  const email = sim.accounts[0]!.email
  const i = h.app.qwenPool.get(id)!
  const token = i.token
  i.token = 'not-a-valid-token'
  const test = await post(`${h.url}/admin/api/identities/${id}/test`)
  i.token = token
  t.equal(test.status, 200)
  t.equal(test.json.ok, false)
  t.match(test.json.message, /refused or failed/)
  sim.queue(email, { endpoint: 'auths', fail: 'rate_limited' })
  const ref = await post(`${h.url}/admin/api/identities/${id}/refresh`)
  t.equal(ref.json.ok, false)
  t.match(ref.json.message, /Token refresh failed/)
  // A token missing or about to expire is fetched before the test request.
  i.token = undefined
  sim.queue(email, { endpoint: 'auths', fail: 'unauthorized_401' })
  const noToken = await post(`${h.url}/admin/api/identities/${id}/test`)
  t.equal(noToken.json.ok, false)
  t.match(noToken.json.message, /No token/)
  i.token = undefined
  const fetched = await post(`${h.url}/admin/api/identities/${id}/test`)
  t.equal(fetched.json.ok, true, fetched.json.message)
  noSecrets(t, 'failed actions', [test.text, ref.text, noToken.text, fetched.text].join('\n'), secretsOf(h))
  const page = await fetch(`${h.url}/admin`, { redirect: 'manual' })
  t.equal(page.status, 308)
  t.equal(page.headers.get('location'), '/admin/')
})
