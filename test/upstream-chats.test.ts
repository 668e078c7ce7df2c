/** Chat listing and deletion (E6/E8) in the upstream client, against the simulator; the protocol's readings. */
import t from 'tap'
import { Agent } from 'undici'
import { UpstreamError } from '../src/errors.js'
import { startSimulator, type Simulator } from '../src/simulator/index.js'
import { UpstreamClient } from '../src/upstream/client.js'
import { chatPath, chatsOf, chatsPath, deleteAnswer, type Credentials } from '../src/upstream/protocol.js'

const dispatcher = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 })
t.teardown(() => dispatcher.close())

async function setup (t: { teardown (fn: () => unknown): void }): Promise<{ sim: Simulator; client: UpstreamClient; cred: Credentials }> {
  const sim = await startSimulator({ demoAccounts: 2 })
  t.teardown(() => sim.close())
  const client = new UpstreamClient({ baseUrl: sim.url, dispatcher, firstByteTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxBufferBytes: 1024 * 1024 })
  const { token } = await client.fetchToken(sim.accounts[0]!.cookie)
  return { sim, client, cred: { token } }
}

t.test('listChats: newest first, paged as the upstream pages', async (t) => {
  const { sim, client, cred } = await setup(t)
  t.same(await client.listChats(cred), [], 'a new account has no chats')
  const ids: string[] = []
  for (let i = 0; i < 23; i++) ids.push(await client.createChat(cred, 'qwen3-max', i % 2 ? 'search' : 't2t'))
  const first = await client.listChats(cred, { requestId: 'req-list' })
  t.equal(first.length, 20, 'the simulator pages by 20')
  t.same(first.map((c) => c.id), ids.slice().reverse().slice(0, 20))
  t.equal(first[0]!.title, 'New Chat')
  t.equal(first[0]!.chatType, 't2t')
  t.ok(Math.abs(first[0]!.createdAt! - Date.now()) < 60_000, 'times are milliseconds')
  const second = await client.listChats(cred, { page: 2 })
  t.same(second.map((c) => c.id), ids.slice(0, 3).reverse())
  t.same(await client.listChats(cred, { page: 3 }), [], 'past the end: an empty page')
  const log = sim.log().filter((e) => e.method === 'GET' && e.path === '/api/v2/chats/')
  t.same(log.map((e) => e.query.page), ['1', '1', '2', '3'])
  t.equal(log[1]!.headers['x-request-id'], 'req-list')
  t.same(await client.listChats({ token: (await client.fetchToken(sim.accounts[1]!.cookie)).token }), [], 'another account sees none of them')
  await t.rejects(client.listChats(cred, { page: 0 }), RangeError)
})

t.test('deleteChat: true once, false when already gone; the chat leaves the upstream', async (t) => {
  const { sim, client, cred } = await setup(t)
  const email = sim.accounts[0]!.email
  const keep = await client.createChat(cred, 'qwen3-max', 't2t')
  const drop = await client.createChat(cred, 'qwen3-max', 't2t')
  t.equal(await client.deleteChat(cred, drop, { requestId: 'req-del' }), true)
  t.same(sim.chats(email).map((c) => c.id), [keep])
  t.same((await client.listChats(cred)).map((c) => c.id), [keep])
  t.equal(await client.deleteChat(cred, drop), false, 'already deleted')
  t.equal(await client.deleteChat(cred, 'no/such chat'), false, 'ids are escaped into one path segment')
  const del = sim.log().filter((e) => e.method === 'DELETE')
  t.same(del.map((e) => `${e.path} ${e.status}`), [`/api/v2/chats/${drop} 200`, `/api/v2/chats/${drop} 404`, '/api/v2/chats/no%2Fsuch%20chat 404'])
  t.equal(del[0]!.headers['x-request-id'], 'req-del')
  t.notOk('content-type' in del[0]!.headers, 'no body, no content type')
  const other = (await client.fetchToken(sim.accounts[1]!.cookie)).token
  t.equal(await client.deleteChat({ token: other }, keep), false, 'another account cannot delete it')
  t.same(sim.chats(email).map((c) => c.id), [keep])
})

t.test('list and delete failures are UpstreamErrors; an aborted call rejects with its reason', async (t) => {
  const { sim, client, cred } = await setup(t)
  const id = await client.createChat(cred, 'qwen3-max', 't2t')
  sim.revokeTokens(sim.accounts[0]!.email)
  for (const call of [() => client.listChats(cred), () => client.deleteChat(cred, id)]) {
    const err = await call().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof UpstreamError)
    t.equal((err as UpstreamError).kind, 'auth_failed')
  }
  const ac = new AbortController()
  const reason = new Error('gone')
  ac.abort(reason)
  await t.rejects(client.listChats(cred, { signal: ac.signal }), reason)
  await t.rejects(client.deleteChat(cred, id, { signal: ac.signal }), reason)
})

t.test('protocol: E6/E8 paths and readings', async (t) => {
  t.equal(chatsPath(2), '/api/v2/chats/?page=2')
  t.equal(chatPath('a/b'), '/api/v2/chats/a%2Fb')
  t.same(chatsOf({ success: true, data: [{ id: 'a', title: 'T', created_at: 2, updated_at: 3, chat_type: 't2t' }, { id: '' }, null, { title: 'no id' }, { id: 'b' }] }), [
    { id: 'a', title: 'T', createdAt: 2000, updatedAt: 3000, chatType: 't2t' }, { id: 'b' },
  ])
  t.equal(chatsOf({ success: true, data: {} }), undefined)
  t.equal(chatsOf(undefined), undefined)
  const json = 'application/json'
  const rows: Array<[string, number, string, string, string]> = [
    ['204 no body', 204, '', '', 'deleted'],
    ['200 empty body', 200, json, '', 'deleted'],
    ['2025 success', 200, json, '{"success":true,"data":true}', 'deleted'],
    ['2026 success', 200, json, '{"success":true,"data":{"status":true}}', 'deleted'],
    ['2026 refusal', 200, json, '{"success":true,"data":{"status":false}}', 'problem:server'],
    ['data false', 200, json, '{"success":true,"data":false}', 'problem:server'],
    ['not JSON on 200', 200, json, 'nope', 'problem:server'],
    ['Not_Found 404', 404, json, '{"success":false,"data":{"code":"Not_Found","details":"Chat not found"}}', 'not_found'],
    ['Not_Found in a 200', 200, json, '{"success":false,"data":{"code":"Not_Found","details":"Chat not found"}}', 'not_found'],
    ['plain 404', 404, 'text/plain', 'Not Found', 'not_found'],
    ['Unauthorized', 401, json, '{"success":false,"data":{"code":"Unauthorized","details":"expired"}}', 'problem:unauthorized'],
    ['RateLimited', 200, json, '{"success":false,"data":{"code":"RateLimited","details":"slow down","num":1}}', 'problem:rate_limited'],
    ['challenge page', 200, 'text/html', '<html>captcha</html>', 'problem:challenge'],
    ['5xx', 502, 'text/plain', 'bad gateway', 'problem:server'],
  ]
  for (const [name, status, ct, body, want] of rows) {
    const a = deleteAnswer(status, ct, body)
    t.equal(a.kind === 'problem' ? `problem:${a.problem.kind}` : a.kind, want, name)
  }
})
