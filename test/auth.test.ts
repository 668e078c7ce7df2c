/** Server mode (API key) and client mode (caller's own credentials), DECISIONS "Authentication". */
import t from 'tap'
import { defaultAnswer } from '../src/simulator/index.js'
import { parseClientCredentials } from '../plugins/auth.js'
import { harness, postJson, startSim } from './helpers/setup.js'
import { poolCounts } from '../src/pool-view.js'

const body = { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }

t.test('server mode with an API key: Bearer or x-api-key, nothing else', async (t) => {
  const h = await harness(t, { gateway: { apiKey: 'sk-secret-key' } })
  const url = `${h.url}/v1/chat/completions`
  const none = await postJson(url, body)
  t.equal(none.status, 401)
  const e = await none.json() as any
  t.same([e.error.code, e.error.type], ['invalid_api_key', 'invalid_request_error'])
  t.equal((await postJson(url, body, { authorization: 'Bearer sk-wrong' })).status, 401)
  t.equal((await postJson(url, body, { authorization: 'Bearer sk-secret-key-and-more' })).status, 401)
  t.equal((await postJson(`${url}?api_key=sk-secret-key`, body)).status, 401, 'not from the query string')
  t.equal((await postJson(url, { ...body, api_key: 'sk-secret-key' })).status, 401, 'not from the body')
  t.equal((await postJson(url, body, { authorization: 'Bearer sk-secret-key' })).status, 200)
  t.equal((await postJson(url, body, { authorization: 'bearer   sk-secret-key' })).status, 200)
  t.equal((await postJson(url, body, { 'x-api-key': 'sk-secret-key' })).status, 200)
  t.equal((await fetch(`${h.url}/v1/models`)).status, 401)
  t.equal((await fetch(`${h.url}/health`)).status, 200, '/health stays open')
  t.equal((await fetch(`${h.url}/`)).status, 200)
  const refresh = await postJson(`${h.url}/refresh-token`, {})
  t.equal(refresh.status, 401, '/refresh-token needs the key even from loopback')
  t.equal((await postJson(`${h.url}/refresh-token`, {}, { authorization: 'Bearer sk-secret-key' })).status, 200)
})

t.test('without an API key, /refresh-token answers loopback callers only', async (t) => {
  const h = await harness(t)
  t.equal((await postJson(`${h.url}/refresh-token`, {})).status, 200)
  const remote = await h.app.inject({ method: 'POST', url: '/refresh-token', remoteAddress: '203.0.113.9', payload: {} })
  t.equal(remote.statusCode, 403)
  t.equal(remote.json().error.type, 'permission_error')
})

t.test('client-mode header parsing: the cookie may contain ";"', async (t) => {
  t.same(parseClientCredentials('sk;tok;a=1; b=2', true), { key: 'sk', token: 'tok', cookie: 'a=1; b=2' })
  t.same(parseClientCredentials('tok;a=1; b=2', false), { token: 'tok', cookie: 'a=1; b=2' })
  t.same(parseClientCredentials(';a=1; b=2', false), { cookie: 'a=1; b=2' })
  t.same(parseClientCredentials('tok', false), { token: 'tok' })
  t.same(parseClientCredentials('sk', true), { key: 'sk' })
})

t.test('client mode: requests run on the caller\'s identity', async (t) => {
  const sim = await startSim(t, { demoAccounts: 2 })
  const h = await harness(t, { simulator: sim, gateway: { serverMode: false, cookies: [] } })
  const [a, b] = sim.accounts
  const url = `${h.url}/v1/chat/completions`
  const missing = await postJson(url, body)
  t.equal(missing.status, 401)
  t.equal((await missing.json() as any).error.code, 'missing_credentials')

  // Empty token: fetched from the (full, ;-containing) cookie once, then cached.
  for (let i = 0; i < 2; i++) {
    const r = await postJson(url, body, { authorization: `Bearer ;${a!.cookie}` })
    t.equal(r.status, 200)
    t.equal((await r.json() as any).choices[0].message.content, defaultAnswer('hi'))
  }
  const auths = sim.log().filter((e) => e.path === '/api/v1/auths/')
  t.equal(auths.length, 1, 'the token was fetched once and cached')
  t.ok(sim.log().filter((e) => e.path === '/api/v2/chat/completions').every((e) => e.account === a!.email))

  // A token alone works too.
  const tokenB = /token=([^;]+)/.exec(b!.cookie)![1]
  const r2 = await postJson(url, body, { authorization: `Bearer ${tokenB}` })
  t.equal(r2.status, 200)
  t.equal(sim.log().filter((e) => e.path === '/api/v2/chat/completions').pop()!.account, b!.email)

  const forged = await postJson(url, body, { authorization: 'Bearer not-a-real-token' })
  t.equal(forged.status, 401, "client mode: the caller's own refused token is theirs to fix (401, not 503)")
  t.equal((await forged.json() as any).error.code, 'upstream_auth_failed')
  t.equal(poolCounts(h.app.qwenPool).total, 0, 'client-mode identities are not in the pool')
})

t.test('client mode with an API key: Bearer <key>;<token>;<cookie>', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const h = await harness(t, { simulator: sim, gateway: { serverMode: false, apiKey: 'sk-k', cookies: [] } })
  const cookie = sim.accounts[0]!.cookie
  const url = `${h.url}/v1/chat/completions`
  t.equal((await postJson(url, body, { authorization: `Bearer sk-k;;${cookie}` })).status, 200)
  t.equal((await postJson(url, body, { authorization: `Bearer sk-bad;;${cookie}` })).status, 401)
  const onlyKey = await postJson(url, body, { authorization: 'Bearer sk-k' })
  t.equal(onlyKey.status, 401)
  t.equal((await onlyKey.json() as any).error.code, 'missing_credentials')
})
