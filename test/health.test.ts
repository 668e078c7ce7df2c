/** /health, /refresh-token and / (landing). */
import t from 'tap'
import { buildServer } from '../src/index.js'
import { harness, postJson } from './helpers/setup.js'

t.test('/health has the original shape and no secret', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'sk-health-secret' } })
  const res = await fetch(`${h.url}/health`)
  t.equal(res.status, 200)
  const text = await res.text()
  const j = JSON.parse(text)
  t.equal(j.status, 'OK')
  t.ok(!Number.isNaN(Date.parse(j.timestamp)))
  t.equal(j.version, '0.1.0')
  t.same(j.config, { apiKeyEnabled: true, serverMode: true, debugMode: false, autoRefreshToken: true })
  t.equal(j.token.valid, true)
  t.equal(j.token.expired, false)
  t.ok(j.token.remainingTime > 6 * 24 * 3_600_000)
  t.match(j.token.formattedTime, /^6 days 23 hours$|^7 days$/)
  t.equal(j.token.needsRefresh, false)
  t.equal(j.token.reason, 'Token is still valid')
  t.same(j.identityPool, { total: 2, healthy: 2, degraded: 0, down: 0, initialized: true })
  t.notMatch(text, /sk-health-secret/)
  for (const a of h.sim.accounts) {
    t.notOk(text.includes(a.cookie) || text.includes(/token=([^;]+)/.exec(a.cookie)![1]!), 'no cookie or token in /health')
  }
})

t.test('/health without any identity', async (t) => {
  const h = await harness(t, { gateway: { cookies: [] } })
  const j = await (await fetch(`${h.url}/health`)).json() as any
  t.same(j.identityPool, { total: 0, healthy: 0, degraded: 0, down: 0, initialized: true })
  t.same(j.token, { valid: false, expired: true, remainingTime: 0, formattedTime: 'expired', needsRefresh: true, reason: 'No token found' })
})

t.test('/refresh-token refreshes every identity or one, per identity results', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 2 } })
  h.sim.clearLog()
  const all = await postJson(`${h.url}/refresh-token`, {})
  t.equal(all.status, 200)
  const j = await all.json() as any
  t.equal(j.success, true)
  t.equal(j.results.length, 2)
  t.ok(j.results.every((r: any) => r.success && r.expiresAt && /^u-[0-9a-f]{12}$/.test(r.identity)))
  t.equal(h.sim.log().filter((e) => e.path === '/api/v1/auths/').length, 2)

  const one = await postJson(`${h.url}/refresh-token`, { identity: j.results[1].identity })
  t.equal((await one.json() as any).results.length, 1)
  const unknown = await postJson(`${h.url}/refresh-token`, { identity: 'u-000000000000' })
  t.equal(unknown.status, 404)
  t.equal((await unknown.json() as any).error.code, 'identity_not_found')
  const empty = await fetch(`${h.url}/refresh-token`, { method: 'POST' })
  t.equal(empty.status, 200, 'no body at all is fine')

  h.sim.expireSession(h.sim.accounts[0]!.email)
  const partial = await (await postJson(`${h.url}/refresh-token`, {})).json() as any
  t.equal(partial.success, false)
  t.equal(partial.results.filter((r: any) => r.success).length, 1)
  h.sim.expireSession(h.sim.accounts[1]!.email)
  const none = await postJson(`${h.url}/refresh-token`, {})
  t.equal(none.status, 503)
  t.equal((await none.json() as any).error.code, 'upstream_auth_failed')
})

t.test('/ names the version and the endpoints', async (t) => {
  const h = await harness(t)
  const j = await (await fetch(`${h.url}/`)).json() as any
  t.equal(j.name, 'qwen-gateway')
  t.ok(j.endpoints.some((e: any) => e.path === '/v1/chat/completions' && e.method === 'POST'))
})

t.test('CORS preflight allows the SDK headers (no key needed for the preflight)', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'sk-preflight' } })
  const res = await fetch(`${h.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-os' },
  })
  t.ok(res.status === 204 || res.status === 200)
  t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
  t.match(res.headers.get('access-control-allow-headers') ?? '', /x-stainless-os/)
  t.match(res.headers.get('access-control-allow-headers') ?? '', /authorization/)
})

t.test('routes are protected unless they declare themselves public', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'sk-default' } })
  t.equal((await fetch(`${h.url}/health`)).status, 200, '/health is public')
  t.equal((await fetch(`${h.url}/`)).status, 200, '/ is public')
  t.equal((await fetch(`${h.url}/v1/models`)).status, 401, '/v1/models needs the key')
  t.equal((await fetch(`${h.url}/nope`)).status, 404, 'an unknown URL is a 404, not a 401')
  // A route added in the gateway's context without saying anything is protected.
  const app = await buildServer({ apiKey: 'sk-default', cookies: [] }, { logger: false })
  t.teardown(() => app.close())
  app.get('/custom', async () => ({ ok: true }))
  t.equal((await app.inject({ url: '/custom' })).statusCode, 401)
  t.equal((await app.inject({ url: '/custom', headers: { authorization: 'Bearer sk-default' } })).statusCode, 200)
})

t.test('x-request-id is taken from the request and echoed', async (t) => {
  const h = await harness(t)
  const res = await fetch(`${h.url}/health`, { headers: { 'x-request-id': 'my-trace-123' } })
  t.equal(res.headers.get('x-request-id'), 'my-trace-123')
})
