import t from 'tap'
import { ModelNotFoundError } from '../src/errors.js'
import { BUILTIN_MODELS, ModelCatalog, parseModelName } from '../src/models.js'
import { modelInfo, type UpstreamModel } from '../src/upstream/protocol.js'

const upstream: UpstreamModel[] = [
  { id: 'qwen3-max', info: { created_at: 1700000000, meta: { abilities: { thinking: 1 }, chat_type: ['t2t', 'search'], capabilities: { vision: true }, max_context_length: 262144 } } },
  { id: 'qwq-32b', info: { meta: { capabilities: { thinking: true }, chat_type: ['t2t'] } } },
  { id: 'qwen3-coder-plus', info: { meta: { abilities: { thinking: 0 }, chat_type: ['t2t', 'search'] } } },
]

function catalog (fetch: () => Promise<UpstreamModel[]>, now = () => 0, aliases: Record<string, string> = {}) {
  const errors: unknown[] = []
  const c = new ModelCatalog({ ttlMs: 1000, aliases, now, fetch, onError: (e) => errors.push(e) })
  return { c, errors }
}

t.test('model name suffixes in either order', async (t) => {
  t.same(parseModelName('qwen3-max'), { base: 'qwen3-max', thinking: false, search: false })
  t.same(parseModelName('qwen3-max-thinking'), { base: 'qwen3-max', thinking: true, search: false })
  t.same(parseModelName('qwen3-max-thinking-search'), { base: 'qwen3-max', thinking: true, search: true })
  t.same(parseModelName('qwen3-max-search-thinking'), { base: 'qwen3-max', thinking: true, search: true })
  t.same(parseModelName('-thinking'), { base: '-thinking', thinking: false, search: false })
})

t.test('capabilities read from the upstream list', async (t) => {
  t.same(modelInfo(upstream[0]!), { id: 'qwen3-max', created: 1700000000, thinking: true, search: true, vision: true, contextLength: 262144 })
  t.same(modelInfo(upstream[1]!), { id: 'qwq-32b', created: 0, thinking: true, search: false, vision: false })
  t.same(modelInfo(upstream[2]!), { id: 'qwen3-coder-plus', created: 0, thinking: false, search: true, vision: false })
})

t.test('variants listed per capability, aliases included, unlisted variants are 404', async (t) => {
  const { c } = catalog(async () => upstream, () => 0, { 'gpt-4o': 'qwen3-max-thinking' })
  const ids = (await c.list()).map((m) => m.id)
  t.same(ids, ['qwen3-max', 'qwen3-max-thinking', 'qwen3-max-search', 'qwen3-max-thinking-search', 'qwq-32b', 'qwq-32b-thinking', 'qwen3-coder-plus', 'qwen3-coder-plus-search', 'gpt-4o'])
  t.equal(c.source, 'upstream')
  const r = await c.resolve('qwen3-max-search-thinking')
  t.same([r.base, r.thinking, r.search, r.chatType, r.requested], ['qwen3-max', true, true, 'search', 'qwen3-max-search-thinking'])
  const alias = await c.resolve('gpt-4o')
  t.same([alias.base, alias.thinking, alias.requested], ['qwen3-max', true, 'gpt-4o'])
  await t.rejects(c.resolve('qwq-32b-search'), ModelNotFoundError)
  await t.rejects(c.resolve('qwen3-coder-plus-thinking'), ModelNotFoundError)
  await t.rejects(c.resolve('gpt-5'), ModelNotFoundError)
})

t.test('cached with a TTL; one upstream call for concurrent callers; stale list served on failure', async (t) => {
  let calls = 0
  let now = 0
  let fail = false
  const { c, errors } = catalog(async () => { calls++; if (fail) throw new Error('down'); return upstream }, () => now)
  await Promise.all([c.list(), c.list(), c.resolve('qwen3-max')])
  t.equal(calls, 1)
  now = 500
  await c.list()
  t.equal(calls, 1, 'fresh within the TTL')
  now = 1500
  fail = true
  await c.list()
  await c.settled()
  t.equal(calls, 2, 'refreshed after the TTL')
  t.equal(errors.length, 1)
  t.equal(c.source, 'upstream', 'the last good list is kept')
  t.ok(await c.resolve('qwq-32b'))
})

t.test('the built-in list serves when the upstream list was never fetched', async (t) => {
  const { c } = catalog(async () => { throw new Error('unreachable') })
  const ids = (await c.list()).map((m) => m.id)
  t.ok(ids.includes(BUILTIN_MODELS[0]!.id))
  t.equal(c.source, 'builtin')
  t.ok(await c.resolve('qwen3-max-thinking'))
  const unknown = await c.resolve('qwen9-ultra-thinking')
  t.same([unknown.base, unknown.thinking], ['qwen9-ultra', true], 'with no upstream list, a name is trusted rather than refused')
})
