/**
 * Redaction (operations issue): the end-to-end scenarios run with debug logging (DEBUG_MODE: upstream
 * calls and frames included), and no log line holds a cookie, a token, a password (plain or hashed)
 * or an API key.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { buildServer } from '../../src/index.js'
import { encodePng } from '../../src/media/png.js'
import { credentialsOf } from '../../src/pool.js'
import type { Simulator } from '../../src/simulator/index.js'
import { postJson, sseData, startSim } from '../helpers/setup.js'

const KEY = 'sk-redaction-test-key-0123456789abcdef'
const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })

/** The parts of a credential that must never be logged (pieces of 16+ characters, so a prefix of a secret counts too). */
function pieces (secret: string): string[] {
  const out = new Set<string>()
  for (const part of secret.split(/[;=\s.]+/)) {
    if (part.length < 16) continue
    out.add(part.slice(0, 16))
    out.add(part.slice(-16))
  }
  return [...out]
}

async function gateway (sim: Simulator, lines: string[], extra: Record<string, unknown>) {
  const app = await buildServer({ qwenBaseUrl: sim.url, debugMode: true, ...extra }, { logger: { level: 'debug', stream: { write: (l: string) => { lines.push(l) } } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.qwenTokens.ready()
  return { app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` }
}

t.test('debug logs of the end-to-end scenarios hold no secret', async (t) => {
  const sim = await startSim(t, { demoAccounts: 3 })
  const [a, b, c] = sim.accounts
  const lines: string[] = []
  const auth = { authorization: `Bearer ${KEY}` }

  // Server mode: one cookie account and one e-mail/password account.
  const g = await gateway(sim, lines, { apiKey: KEY, cookies: [a!.cookie], accounts: [{ email: b!.email, password: b!.password }] })
  t.teardown(() => g.app.close())
  const completions = `${g.url}/v1/chat/completions`
  t.equal((await postJson(completions, body(), auth)).status, 200)
  t.equal(sseData(await (await postJson(completions, body({ stream: true, model: 'qwen3-max-thinking' }), auth)).text()).at(-1), '[DONE]')
  // An image: STS grant (key id, secret, security token), the signed PUT and the signed file URL.
  const png = encodePng(2, 2).toString('base64')
  const withImage = await postJson(completions, body({ messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }] }), auth)
  t.equal(withImage.status, 200)
  await withImage.arrayBuffer()
  // A failover (rate limit on one account) and an upstream error frame.
  sim.queue(a!.email, { fail: 'rate_limited' })
  sim.queue(b!.email, { fail: 'rate_limited' })
  await (await postJson(completions, body(), auth)).arrayBuffer()
  sim.queue(a!.email, { errorAfterFrames: 2 })
  sim.queue(b!.email, { errorAfterFrames: 2 })
  await (await postJson(completions, body({ stream: true }), auth)).arrayBuffer()
  // Revoked tokens: refreshed from the cookie and by signing in again.
  sim.revokeTokens(a!.email)
  sim.revokeTokens(b!.email)
  await (await postJson(completions, body(), auth)).arrayBuffer()
  await (await postJson(`${g.url}/refresh-token`, {}, auth)).arrayBuffer()
  // Wrong keys.
  await (await postJson(completions, body(), { authorization: 'Bearer sk-wrong-key-that-is-long-0123456789' })).arrayBuffer()
  await (await postJson(completions, body(), { 'x-api-key': 'sk-another-wrong-key-0123456789' })).arrayBuffer()
  await (await fetch(`${g.url}/health`, { headers: auth })).arrayBuffer()
  const tokens = g.app.qwenPool.identities.map((i) => credentialsOf(i).token).filter((x): x is string => typeof x === 'string')
  t.ok(tokens.length >= 2, 'tokens were minted')

  // Client mode: the caller's own token and cookie.
  const cm = await gateway(sim, lines, { serverMode: false, cookies: [] })
  t.teardown(() => cm.app.close())
  const tokenC = /token=([^;]+)/.exec(c!.cookie)![1]!
  t.equal((await postJson(`${cm.url}/v1/chat/completions`, body(), { authorization: `Bearer ;${c!.cookie}` })).status, 200)
  t.equal((await postJson(`${cm.url}/v1/chat/completions`, body(), { authorization: `Bearer ${tokenC}` })).status, 200)
  await (await postJson(`${cm.url}/v1/chat/completions`, body(), { authorization: 'Bearer forged-token-0123456789abcdef' })).arrayBuffer()

  await g.app.close()
  await cm.app.close()
  t.ok(lines.length > 50, `debug logging ran (${lines.length} lines)`)
  t.ok(lines.some((l) => l.includes('upstream frame')), 'upstream frames were logged')

  const secrets: Array<[string, string]> = []
  for (const acct of [a!, b!, c!]) {
    for (const p of pieces(acct.cookie)) secrets.push([`${acct.email} cookie`, p])
    secrets.push([`${acct.email} password`, acct.password])
    secrets.push([`${acct.email} password sha256`, createHash('sha256').update(acct.password).digest('hex')])
  }
  for (const tok of tokens) for (const p of pieces(tok)) secrets.push(['token', p])
  for (const k of [KEY, 'sk-wrong-key-that-is-long-0123456789', 'sk-another-wrong-key-0123456789', 'forged-token-0123456789abcdef']) secrets.push(['key', k.slice(3, 19)])
  const leaks = secrets.filter(([, s]) => lines.some((l) => l.includes(s)))
  t.same(leaks.map(([what]) => what), [], 'no secret in any log line')
  t.ok(lines.some((l) => l.includes('access_key_secret')), 'the STS answer was logged (redacted)')
  const sts = [/STS\.[0-9a-f]{24}/, /CAIS[\w-]{20,}/, /"access_key_(?:id|secret)":"(?!\[redacted\])/, /[?&]key=(?!\[redacted\])[0-9a-f]{8,}/]
  t.same(sts.filter((re) => lines.some((l) => re.test(l))).map(String), [], 'no STS key id, secret, security token or signed-URL key')
})
