import t from 'tap'
import { ModelNotFoundError } from '../src/errors.js'
import { BUILTIN_MODELS, MODEL_LIST_WAIT_MS, ModelCatalog, parseModelName, type CatalogOptions } from '../src/models.js'
import { modelInfo, type UpstreamModel } from '../src/upstream/protocol.js'

const upstream: UpstreamModel[] = [
  { id: 'qwen3-max', info: { created_at: 1700000000, meta: { abilities: { thinking: 1 }, chat_type: ['t2t', 'search'], capabilities: { vision: true }, max_context_length: 262144 } } },
  { id: 'qwq-32b', info: { meta: { capabilities: { thinking: true }, chat_type: ['t2t'] } } },
  { id: 'qwen3-coder-plus', info: { meta: { abilities: { thinking: 0 }, chat_type: ['t2t', 'search'] } } },
]

function catalog (fetch: (signal: AbortSignal) => Promise<UpstreamModel[]>, now = () => 0, aliases: Record<string, string> = {}, extra: Partial<CatalogOptions> = {}) {
  const errors: unknown[] = []
  const unknownAliases: Array<[string, string]> = []
  const c = new ModelCatalog({ ttlMs: 1000, aliases, now, fetch, onError: (e) => errors.push(e), onUnknownAlias: (a, target) => unknownAliases.push([a, target]), ...extra })
  return { c, errors, unknownAliases }
}

/** A fetch that stays pending until the test settles it (or its signal aborts). */
function pendingFetch () {
  const signals: AbortSignal[] = []
  let settle: ((list: UpstreamModel[]) => void) | undefined
  const fetch = (signal: AbortSignal): Promise<UpstreamModel[]> => new Promise((resolve, reject) => {
    signals.push(signal)
    settle = resolve
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
  return { fetch, signals, settle: (list: UpstreamModel[]) => settle!(list) }
}

async function timed<T> (p: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now()
  const value = await p
  return { value, ms: performance.now() - start }
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

t.test('a caller waits for a slow list at most the budget; the fetch goes on for the cache (one upstream call)', async (t) => {
  const f = pendingFetch()
  const { c } = catalog(f.fetch, () => 0, {}, { waitBudgetMs: 50 })
  const first = await timed(c.resolve('qwen3-max-thinking'))
  t.ok(first.ms >= 40 && first.ms < 1000, `held ${Math.round(first.ms)} ms with a 50 ms budget`)
  t.equal(first.value.base, 'qwen3-max')
  t.equal(c.source, 'builtin', 'served from the built-in list')
  const [list, second] = await Promise.all([timed(c.list()), timed(c.resolve('qwq-32b'))])
  t.ok(list.ms < 1000 && second.ms < 1000)
  t.equal(f.signals.length, 1, 'every waiter shares the one running fetch')
  t.notOk(f.signals[0]!.aborted, 'giving up waiting does not abort the fetch')
  f.settle(upstream)
  await c.settled()
  t.equal(c.source, 'upstream', 'the background fetch fills the cache')
  await t.rejects(c.resolve('qwq-32b-search'), ModelNotFoundError)
  t.equal(MODEL_LIST_WAIT_MS, 1500, 'the default budget is short')
})

t.test('a fast list is waited for, not cut by the budget', async (t) => {
  const { c } = catalog(async () => { await new Promise((resolve) => setTimeout(resolve, 20)); return upstream }, () => 0, {}, { waitBudgetMs: 5000 })
  await c.resolve('qwen3-max')
  t.equal(c.source, 'upstream')
  await t.rejects(c.resolve('qwen9-ultra'), ModelNotFoundError, 'resolved against the fetched list')
})

t.test("a caller's abort stops its wait at once and throws the signal's reason", async (t) => {
  const f = pendingFetch()
  const { c } = catalog(f.fetch, () => 0, {}, { waitBudgetMs: 60_000 })
  const ac = new AbortController()
  const reason = new Error('client gone')
  setTimeout(() => ac.abort(reason), 30)
  const start = performance.now()
  await t.rejects(c.resolve('qwen3-max', { signal: ac.signal }), reason)
  t.ok(performance.now() - start < 1000, 'not held for the 60 s budget')
  t.notOk(f.signals[0]!.aborted, 'the shared fetch carries on')
  await t.rejects(c.resolve('qwen3-max', { signal: ac.signal }), reason, 'an already aborted signal throws before anything else')
  await t.rejects(c.list({ signal: AbortSignal.abort() }), { name: 'AbortError' }, 'a signal without a reason throws an AbortError')
  f.settle(upstream)
  await c.settled()
  t.equal(c.source, 'upstream')
  const ok = await c.resolve('qwen3-max', { signal: new AbortController().signal })
  t.equal(ok.base, 'qwen3-max', 'a live signal changes nothing once the list is there')
})

t.test('close() aborts the running fetch, releases the waiters and starts no new fetch', async (t) => {
  const f = pendingFetch()
  const { c, errors } = catalog(f.fetch, () => 0, {}, { waitBudgetMs: 60_000 })
  const waiting = timed(c.resolve('qwen3-max'))
  await new Promise((resolve) => setImmediate(resolve))
  c.close()
  t.ok(f.signals[0]!.aborted, 'the fetch is aborted')
  const w = await waiting
  t.ok(w.ms < 1000, 'the waiter is released with the built-in list')
  t.equal(w.value.base, 'qwen3-max')
  await c.settled()
  t.same(errors, [], 'an abort on close is not reported as an upstream failure')
  await c.refresh(true)
  await c.list()
  t.equal(f.signals.length, 1, 'no fetch after close')
  t.equal(c.source, 'builtin')
})

t.test('a list that arrives after close is discarded', async (t) => {
  let settle: ((l: UpstreamModel[]) => void) | undefined
  const { c, errors } = catalog(() => new Promise((resolve) => { settle = resolve }), () => 0, {}, { waitBudgetMs: 0 })
  await c.list()
  c.close()
  settle!(upstream)
  await c.settled()
  t.equal(c.source, 'builtin')
  t.same(errors, [])
})

t.test('retrieve accepts either suffix order and keeps the requested id; aliases may use either order', async (t) => {
  const { c, unknownAliases } = catalog(async () => upstream, () => 0, { mine: 'qwen3-max-search-thinking' })
  const a = await c.get('qwen3-max-search-thinking')
  const b = await c.get('qwen3-max-thinking-search')
  t.equal(a?.id, 'qwen3-max-search-thinking')
  t.equal(b?.id, 'qwen3-max-thinking-search')
  t.same({ ...a, id: 'x' }, { ...b, id: 'x' }, 'the same model either way')
  t.same(a?.capabilities, { thinking: true, search: true, vision: true, reasoning: true, web_search: true })
  t.equal(await c.get('qwq-32b-search-thinking'), undefined, 'a variant the model lacks is still unknown')
  t.equal(await c.get('nope-search-thinking'), undefined)
  t.equal((await c.get('mine'))?.alias_for, 'qwen3-max-search-thinking')
  const r = await c.resolve('mine')
  t.same([r.base, r.thinking, r.search], ['qwen3-max', true, true])
  t.same(unknownAliases, [])
})

t.test('an alias whose target the upstream does not offer is warned about once per distinct list', async (t) => {
  let list = upstream
  let now = 0
  const aliases = { 'gpt-4o': 'qwen3-max', 'gpt-5': 'qwen4-ultra', 'o1': 'qwq-32b-search' }
  const { c, unknownAliases } = catalog(async () => list, () => now, aliases)
  const ids = (await c.list()).map((m) => m.id)
  t.ok(ids.includes('gpt-4o'))
  t.notOk(ids.includes('gpt-5'), 'not listed')
  t.notOk(ids.includes('o1'), 'a variant the target lacks is not listed')
  t.same(unknownAliases, [['gpt-5', 'qwen4-ultra'], ['o1', 'qwq-32b-search']])
  await t.rejects(c.resolve('gpt-5'), ModelNotFoundError)
  now = 2000
  await c.refresh()
  t.equal(unknownAliases.length, 2, 'the same list fetched again: no new warning')
  list = [...upstream, { id: 'qwen4-ultra', info: { meta: { chat_type: ['t2t'] } } }]
  now = 4000
  await c.refresh()
  t.same(unknownAliases.slice(2), [['o1', 'qwq-32b-search']], 'a different list: warned again, for what is still missing')
  t.ok((await c.list()).some((m) => m.id === 'gpt-5'))
})

t.test('the built-in list never warns about aliases', async (t) => {
  const { c, unknownAliases } = catalog(async () => { throw new Error('down') }, () => 0, { 'gpt-5': 'qwen4-ultra' })
  await c.list()
  t.same(unknownAliases, [])
  const r = await c.resolve('gpt-5')
  t.equal(r.base, 'qwen4-ultra', 'trusted while the upstream list is unknown')
})
