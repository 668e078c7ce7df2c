/**
 * Issue "foundation" defects in the request path, end to end against the simulator: keep-alive
 * follows client silence, gateway limits are neutral for the account, non-stream failover until the
 * response is sent, the answer when nothing can serve follows the identity that comes back first,
 * refused credentials, operator resets, client-mode tokens, and the event surface.
 */
import { createHash } from 'node:crypto'
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { buildServer } from '../src/index.js'
import { newRecord } from '../src/completion.js'
import type { GatewayEventMap } from '../src/events.js'
import { OpenAIStreamFace } from '../src/faces/openai-stream.js'
import { prepareChat } from '../src/openai/request.js'
import { defaultAnswer } from '../src/simulator/index.js'
import { harness, postJson, sseData, startSim, type Harness } from './helpers/setup.js'

const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }], ...extra })
const COMPLETIONS = '/api/v2/chat/completions'
const idOf = (simAccountId: string): string => 'u-' + createHash('sha256').update(simAccountId).digest('hex').slice(0, 12)

async function complete (h: Harness, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return postJson(`${h.url}/v1/chat/completions`, body(extra), headers)
}

async function health (h: Harness): Promise<any> {
  return (await fetch(`${h.url}/health`)).json()
}

t.test('keep-alive follows client silence: hidden thinking still sends comments', async (t) => {
  const h = await harness(t, {
    sim: { demoAccounts: 1, frameChars: 1 },
    gateway: { thinkingOutput: 'hidden', keepAliveIntervalMs: 100 },
  })
  // About 40 reasoning frames 25 ms apart: the upstream is never silent for 100 ms, the client is.
  h.sim.queue(h.sim.accounts[0]!.email, { reasoning: 'x'.repeat(40), answer: 'ok', frameDelayMs: 25 })
  const res = await complete(h, { model: 'qwen3-max-thinking', stream: true })
  t.equal(res.status, 200)
  const text = await res.text()
  const beforeContent = text.slice(0, text.indexOf('"content":"o'))
  const comments = beforeContent.split('\n').filter((l) => l === ': keep-alive').length
  t.ok(comments >= 3, `keep-alive comments while the client saw nothing (${comments})`)
  t.notMatch(text, /reasoning_content/, 'hidden reasoning stays hidden')
  t.equal(sseData(text).pop(), '[DONE]')
})

t.test('limits the gateway imposes are neutral for the account', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { maxBufferBytes: 2000, maxRetries: 0 } })
  const email = h.sim.accounts[0]!.email
  for (let k = 0; k < 4; k++) {
    h.sim.queue(email, { answer: 'long answer '.repeat(400) })
    const res = await complete(h)
    t.equal(res.status, 502, `long answer ${k + 1}: 502`)
    t.equal(((await res.json()) as any).error.code, 'upstream_response_too_large')
  }
  const j = await health(h)
  t.same(j.identityPool, { total: 1, healthy: 1, degraded: 0, down: 0, initialized: true }, 'four over-long answers do not trip the breaker')
  t.equal(j.identities[0].failures, 0)
  const ok = await complete(h)
  t.equal(ok.status, 200, 'the account still serves')
})

t.test('non-stream: a failure after the first frame fails over while nothing was sent', async (t) => {
  for (const failure of [{ dropAfterFrames: 2 }, { errorAfterFrames: 2 }] as const) {
    const h = await harness(t, { sim: { demoAccounts: 2 } })
    const [a, b] = h.sim.accounts
    h.sim.queue(a!.email, failure)
    h.sim.clearLog()
    // Round-robin: the first request goes to a, which fails mid-answer; b answers.
    const res = await complete(h)
    t.equal(res.status, 200, `${JSON.stringify(failure)}: the client gets a clean answer`)
    t.equal(((await res.json()) as any).choices[0].message.content, defaultAnswer('hi'))
    const accounts = h.sim.log().filter((e) => e.path === COMPLETIONS).map((e) => e.account)
    t.same(accounts.slice(0, 2), [a!.email, b!.email], 'the first account failed mid-answer, the second was tried')
  }
})

t.test('one account challenged, the other rate limited for hours: 503 upstream_challenge until the challenge ends', async (t) => {
  let clock = Date.now()
  const now = () => clock
  const h = await harness(t, { sim: { demoAccounts: 2, now }, gateway: { now } })
  const [a, b] = h.sim.accounts
  h.sim.queue(a!.email, { fail: 'challenge_json' })
  h.sim.queue(b!.email, { fail: 'rate_limited', rateLimitHours: 5 })
  const first = await complete(h)
  const e1 = (await first.json()) as any
  t.equal(first.status, 503, 'no quick-retry 429 while nothing can serve')
  t.equal(e1.error.code, 'upstream_challenge')
  t.equal(first.headers.get('retry-after'), '600', 'retry-after: whole seconds until the challenge cooldown ends')
  const again = await complete(h)
  t.equal(again.status, 503)
  t.equal(((await again.json()) as any).error.code, 'upstream_challenge', 'the same answer on the next try')
  clock += 601_000
  const back = await complete(h)
  t.equal(back.status, 200, 'the challenged account serves again once its cooldown ends')
})

t.test('every account cooling down after failures: 503 carries retry-after', async (t) => {
  let clock = Date.now()
  const now = () => clock
  const h = await harness(t, { sim: { demoAccounts: 1, now }, gateway: { now, maxRetries: 0 } })
  for (let k = 0; k < 3; k++) {
    h.sim.queue(h.sim.accounts[0]!.email, { fail: { status: 500 } })
    await (await complete(h)).arrayBuffer()
  }
  clock += 30_000
  const res = await complete(h)
  t.equal(res.status, 503)
  t.equal(((await res.json()) as any).error.code, 'no_upstream_identity')
  t.equal(res.headers.get('retry-after'), '90', 'the 2-minute breaker cooldown has 90 s left')
})

t.test('an account whose cookie the upstream refuses is not healthy and is never chosen', async (t) => {
  const sim = await startSim(t, { demoAccounts: 2 })
  const [a, b] = sim.accounts
  sim.expireSession(a!.email)
  const h = await harness(t, { simulator: sim })
  const j = await health(h)
  t.same(j.identityPool, { total: 2, healthy: 1, degraded: 1, down: 0, initialized: true }, 'the refused account counts as degraded')
  const admin = (await (await fetch(`${h.url}/health`)).json()) as any
  const ia = admin.identities.find((i: any) => i.id === idOf(a!.id))
  t.equal(ia.available, false)
  t.equal(ia.blockedBy, 'auth_refused')
  sim.clearLog()
  for (let k = 0; k < 4; k++) t.equal((await complete(h)).status, 200)
  const used = new Set(sim.log().filter((e) => e.path === COMPLETIONS || e.path === '/api/v2/chats/new').map((e) => e.account))
  t.same([...used], [b!.email], 'only the account with a working credential is used')
})

t.test('POST /refresh-token: success clears a challenge; resetCooldowns clears rate limits too', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  const email = h.sim.accounts[0]!.email
  h.sim.queue(email, { fail: 'challenge_json' })
  t.equal((await complete(h)).status, 503)
  t.equal((await complete(h)).status, 503, 'the challenge cooldown holds')
  const r = await postJson(`${h.url}/refresh-token`, {})
  t.equal(r.status, 200)
  t.equal((await complete(h)).status, 200, 'after passing the check and refreshing, the account serves at once')

  h.sim.queue(email, { fail: 'rate_limited', rateLimitHours: 2 })
  t.equal((await complete(h)).status, 429)
  await postJson(`${h.url}/refresh-token`, {})
  t.equal((await complete(h)).status, 429, 'a plain refresh leaves a rate limit in place')
  const id = (await health(h)).identities[0].id
  const reset = await postJson(`${h.url}/refresh-token`, { identity: id, resetCooldowns: true })
  t.equal(reset.status, 200)
  t.equal((await complete(h)).status, 200, 'resetCooldowns clears the rate-limit cooldown')
})

t.test('client mode: concurrent first requests for one cookie fetch one token; an abort stops the wait', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const h = await harness(t, { simulator: sim, gateway: { serverMode: false, cookies: [], requestTimeoutMs: 300 } })
  const auth = { authorization: `Bearer ;${sim.accounts[0]!.cookie}` }
  sim.clearLog()
  const all = await Promise.all(Array.from({ length: 5 }, () => complete(h, {}, auth)))
  t.same(all.map((r) => r.status), [200, 200, 200, 200, 200])
  t.equal(sim.log().filter((e) => e.path === '/api/v1/auths/').length, 1, 'one token fetch for five concurrent requests')

  // A different cookie whose token fetch hangs: the request budget (300 ms) still applies.
  sim.queue(sim.accounts[0]!.email, { endpoint: 'auths', firstByteDelayMs: 3000 })
  const started = Date.now()
  const slow = await complete(h, {}, { authorization: `Bearer ;${sim.accounts[0]!.cookie}; other=1` })
  t.ok(Date.now() - started < 2000, `answered within the request budget (${Date.now() - started} ms)`)
  t.equal(slow.status, 504)
})

t.test('events: chats, failovers and completions are published per app instance', async (t) => {
  // Chat deletion off: this test lists and deletes the chats itself.
  const h = await harness(t, { sim: { demoAccounts: 2 }, gateway: { chatDeletion: 'off' } })
  const other = await buildServer({ qwenBaseUrl: h.sim.url, cookies: [] }, { logger: false })
  t.teardown(() => other.close())
  await other.ready()
  const seen: Array<{ name: keyof GatewayEventMap; e: any }> = []
  const leak: unknown[] = []
  for (const name of ['chat.created', 'failover', 'completion', 'identity.health'] as const) {
    h.app.qwenEvents.on(name, (e) => seen.push({ name, e }))
    other.qwenEvents.on(name, (e) => leak.push(e))
  }
  const [a] = h.sim.accounts
  h.sim.queue(a!.email, { fail: { status: 500 } })
  const res = await complete(h)
  t.equal(res.status, 200)
  t.equal(((await res.json()) as any).choices[0].message.content, defaultAnswer('hi'))
  const chats = seen.filter((s) => s.name === 'chat.created').map((s) => s.e)
  t.equal(chats.length, 2, 'both attempts created a chat and both were announced')
  t.not(chats[0].identity, chats[1].identity, 'each with the identity that owns it')
  t.equal(h.app.qwenCompletions.chats.owner(chats[0].chatId), chats[0].identity, 'the lifecycle service knows the owner')
  const failovers = seen.filter((s) => s.name === 'failover')
  t.equal(failovers.length, 1)
  t.equal(failovers[0]!.e.code, 'upstream_error')
  const done = seen.filter((s) => s.name === 'completion')
  t.equal(done.length, 1)
  t.match(done[0]!.e, { status: 200, outcome: 'ok', attempts: 2, chatId: chats[1].chatId })
  t.same(leak, [], 'another gateway instance sees none of these events')

  // Listing and deleting go through the same service, as the identity that owns the chat.
  const chatsSvc = h.app.qwenCompletions.chats
  const deleted: unknown[] = []
  h.app.qwenEvents.on('chat.deleted', (e) => deleted.push(e))
  const owner = chats[1].identity as string
  const listed = await chatsSvc.list(owner)
  t.ok(listed.some((c) => c.id === chats[1].chatId), 'the owner lists the chat')
  t.equal(await chatsSvc.delete(chats[1].chatId), true, 'deleted by its remembered owner')
  t.same(deleted, [{ identity: owner, chatId: chats[1].chatId }])
  const ownerEmail = h.sim.accounts.find((acc) => idOf(acc.id) === owner)!.email
  t.notOk(h.sim.chats(ownerEmail).some((c) => c.id === chats[1].chatId), 'gone upstream')
  t.equal(await chatsSvc.delete(chats[1].chatId, { identityId: owner }), false, 'a second delete finds nothing')
  await t.rejects(chatsSvc.delete('unknown-chat'), /No known owner/)
})

t.test('a throw between opening the turn and streaming releases the lease (a trial too) and the upstream body', async (t) => {
  let clock = Date.now()
  const now = () => clock
  const h = await harness(t, { sim: { demoAccounts: 1, now }, gateway: { now, maxRetries: 0 } })
  const email = h.sim.accounts[0]!.email
  for (let k = 0; k < 3; k++) {
    h.sim.queue(email, { fail: { status: 500 } })
    await (await complete(h)).arrayBuffer()
  }
  clock += 2 * 60_000 + 1_000 // past the cooldown: the next lease is the half-open trial
  const pool = h.app.qwenPool
  const identity = pool.identities[0]!
  const model = await h.app.qwenModels.resolve('qwen3-max')
  const req = { caller: { kind: 'pool' as const }, model, chat: prepareChat(body({ stream: true }) as any), thinking: false, requestId: 'req_test', signal: new AbortController().signal }
  const res = new ServerResponse(new IncomingMessage(new Socket()))
  h.sim.clearLog()
  await t.rejects(h.app.qwenCompletions.runner.stream(req, res, () => { throw new Error('commit failed') }, newRecord(), new OpenAIStreamFace('chatcmpl-test', 0, 'qwen3-max', false)), /commit failed/)
  t.equal(pool.inFlightOf(identity), 0, 'the lease was released')
  t.equal(pool.health(identity).trialInFlight, false, 'the trial is over, so the identity can be tried again')
  t.equal(h.sim.log().filter((e) => e.path === COMPLETIONS).length, 1)
  const ok = await complete(h)
  t.equal(ok.status, 200, 'the identity takes its next trial')
})

t.test('state writes: successes on healthy accounts and neutral outcomes write nothing; refresh failures are saved', async (t) => {
  const saves: string[] = []
  const file = { load: async () => undefined, save: async (text: string) => { saves.push(text) } }
  const sim = await startSim(t, { demoAccounts: 2 })
  const h = await harness(t, { simulator: sim, gateway: { stateFile: file, stateDebounceMs: 5 } })
  await new Promise((resolve) => setTimeout(resolve, 30))
  const before = saves.length
  for (let k = 0; k < 10; k++) await (await complete(h)).arrayBuffer()
  // Client disconnects: neutral outcomes.
  for (let k = 0; k < 3; k++) {
    const ac = new AbortController()
    sim.queue(sim.accounts[k % 2]!.email, { frameDelayMs: 50 })
    const r = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body({ stream: true })), signal: ac.signal })
    ac.abort()
    await r.body?.cancel().catch(() => {})
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(saves.length, before, 'no state write for successes on healthy accounts or for neutral outcomes')
  sim.expireSession(sim.accounts[0]!.email)
  const r = await postJson(`${h.url}/refresh-token`, {})
  t.equal(r.status, 200)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(saves.length > before, 'a refresh failure is saved')
  const doc = JSON.parse(saves[saves.length - 1]!)
  const saved = doc.identities[idOf(sim.accounts[0]!.id)]
  t.equal(saved.authRefused, true, 'the refused credential is in the saved state')
  t.match(saved.lastError, /auth|token|expired|session/i)
})

t.test('review fixes: token fetches inside a request', async (t) => {
  t.test('a challenge met by the token fetch of a request is recorded once', async (t) => {
    let clock = Date.now()
    const now = () => clock
    const h = await harness(t, { sim: { demoAccounts: 1, now }, gateway: { now, maxRetries: 0 } })
    const email = h.sim.accounts[0]!.email
    h.sim.revokeTokens(email)
    h.sim.queue(email, { endpoint: 'auths', fail: 'challenge_json' })
    const res = await complete(h)
    t.equal(res.status, 503)
    t.equal(((await res.json()) as any).error.code, 'upstream_challenge')
    const rec = h.app.qwenPool.health(h.app.qwenPool.identities[0]!)
    t.equal(rec.challenges, 1, 'one challenge, not two')
    t.equal(rec.challengedUntil, clock + 600_000, 'the first challenge cooldown (10 min), not a doubled one')
  })

  t.test('a pool token fetch stops waiting at the request budget', async (t) => {
    const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { requestTimeoutMs: 300, maxRetries: 0 } })
    const email = h.sim.accounts[0]!.email
    h.sim.revokeTokens(email)
    h.sim.queue(email, { endpoint: 'auths', firstByteDelayMs: 3000 })
    const started = Date.now()
    const res = await complete(h)
    t.equal(res.status, 504)
    t.ok(Date.now() - started < 2000, `answered at the budget (${Date.now() - started} ms), not after the slow token fetch`)
  })

  t.test('client mode: an outage while re-fetching the caller token is not their fault', async (t) => {
    const sim = await startSim(t, { demoAccounts: 1 })
    const h = await harness(t, { simulator: sim, gateway: { serverMode: false, cookies: [] } })
    const auth = { authorization: `Bearer ;${sim.accounts[0]!.cookie}` }
    t.equal((await complete(h, {}, auth)).status, 200)
    sim.revokeTokens(sim.accounts[0]!.email)
    sim.queue(sim.accounts[0]!.email, { endpoint: 'auths', fail: { status: 500 } })
    const res = await complete(h, {}, auth)
    t.equal(res.status, 502, 'an upstream 5xx, not 401')
    t.equal(((await res.json()) as any).error.code, 'upstream_error')
  })
})

t.test('review fixes: a token-only identity whose token is refused is taken out of rotation; resetCooldowns brings it back', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const token = /token=([^;]+)/.exec(sim.accounts[0]!.cookie)![1]!
  const h = await harness(t, { simulator: sim, gateway: { cookies: [], qwenToken: token, maxRetries: 0 } })
  sim.expireSession(sim.accounts[0]!.email)
  const first = await complete(h)
  t.equal(first.status, 503)
  t.equal(((await first.json()) as any).error.code, 'upstream_auth_failed')
  sim.clearLog()
  const second = await complete(h)
  t.equal(second.status, 503)
  t.same(sim.log().filter((e) => e.path === COMPLETIONS || e.path === '/api/v2/chats/new'), [], 'not chosen again while refused, although its token has not expired')
  const j = await health(h)
  t.equal(j.identities[0].available, false)
  t.equal(j.identities[0].blockedBy, 'auth_refused')
  const reset = await postJson(`${h.url}/refresh-token`, { identity: j.identities[0].id, resetCooldowns: true })
  t.equal(reset.status, 200, 'a token-only identity can be reset although it has nothing to refresh')
  t.match(((await reset.json()) as any).message, /reset/i)
  t.equal((await health(h)).identities[0].blockedBy, null)
})

t.test('review fixes: model names that are Object.prototype keys are unknown models', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 } })
  for (const model of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const res = await complete(h, { model })
    t.equal(res.status, 404, model)
    t.equal(((await res.json()) as any).error.code, 'model_not_found')
  }
})

t.test('review fixes: a gateway bug while collecting an answer is not blamed on the account', async (t) => {
  const { gatherAnswer } = await import('../src/turn/gather.js')
  const closed: string[] = []
  const opened = { first: [{}], chatId: 'c', stream: { next: async () => null, release: () => closed.push('release'), close: () => closed.push('close') } } as any
  const t2 = { push: () => { throw new TypeError('bug in a stage') }, events: [], ended: false, upstreamFinished: false } as any
  await t.rejects(gatherAnswer(opened, t2, new AbortController().signal, 1000), TypeError, 'the bug comes out as itself, not as an upstream failure')
  t.same(closed, ['close'], 'the upstream body is cut')
})
