/** `npm run probe -- --upload`: one 1-pixel image through the live upload path, against the simulator. */
import t from 'tap'
import { probeClient } from '../src/probe/client.js'
import { runProbe, type ProbeReport } from '../src/probe/index.js'
import { probeMain } from '../src/probe/main.js'
import { startSim } from './helpers/setup.js'

const check = (r: ProbeReport, name: string) => r.checks.find((c) => c.name === name)

t.test('--upload: STS grant, signed PUT and a vision turn carrying the file; the chats deleted', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const account = sim.accounts[0]!
  let out = ''
  const code = await probeMain({ argv: ['--json', '--upload'], env: { COOKIE: account.cookie, QWEN_BASE_URL: sim.url }, readFile: () => undefined, out: (s) => { out += s }, err: () => {} })
  const r = JSON.parse(out) as ProbeReport
  t.equal(code, 0, JSON.stringify(r.checks.filter((c) => !c.ok)))
  t.same(r.checks.filter((c) => c.name.startsWith('upload:')).map((c) => c.name), ['upload: STS grant', 'upload: object stored', 'upload: turn with the image'])
  t.match(check(r, 'upload: turn with the image')!.detail, /answered \(\d+ characters\) by qwen3-max/)
  const log = sim.log()
  t.equal(log.filter((e) => e.method === 'PUT').length, 1)
  const turn = log.filter((e) => e.path === '/api/v2/chat/completions').at(-1)!
  t.equal((turn.body as { messages: Array<{ files: unknown[] }> }).messages[0]!.files.length, 1, 'the turn carried the file')
  t.equal(sim.chats(account.email).length, 0, 'every chat deleted')
  t.equal(r.requests, 11)
})

t.test('--upload failures are reported, not thrown', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const account = sim.accounts[0]!
  const pc = probeClient({ qwenBaseUrl: sim.url, upstreamConnectTimeoutMs: 5_000, upstreamFirstByteTimeoutMs: 5_000, upstreamIdleTimeoutMs: 5_000, maxBufferBytes: 1 << 20 })
  t.teardown(() => pc.close())
  const run = () => runProbe({ client: pc.client, cookie: account.cookie, upstream: sim.url, upload: true })
  sim.queue(account.email, { endpoint: 'sts', fail: 'bad_request' })
  let r = await run()
  t.match(check(r, 'upload: STS grant and object PUT'), { ok: false, detail: /known upstream refusal \(bad_request/ })
  t.notOk(check(r, 'upload: turn with the image'), 'nothing more after a failed upload')
  sim.queue(account.email, { endpoint: 'chats_new' }, { endpoint: 'chats_new', fail: 'bad_request' })
  r = await run()
  t.match(check(r, 'upload: turn with the image'), { ok: false, detail: /bad_request/ }, 'the image chat refused')
  sim.queue(account.email, {}, {}, { fail: 'rate_limited' })
  r = await run()
  t.match(check(r, 'upload: turn with the image'), { ok: false, detail: /rate_limited/ }, 'the image turn refused')
  t.equal(sim.chats(account.email).length, 0, 'still deleted')
  sim.queue(account.email, {}, {}, { answer: '' })
  r = await run()
  t.match(check(r, 'upload: turn with the image'), { ok: false }, 'an empty answer')
})
