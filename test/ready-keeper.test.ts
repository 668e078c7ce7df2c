/** The ready-chat keeper and its demand tracker, alone: a fake creation function over the in-memory stock. */
import t from 'tap'
import { Demand } from '../src/ready/demand.js'
import { RefillGate } from '../src/ready/gate.js'
import { ReadyChats, WARM_CHAT_TYPES, type ReadyChatsOptions } from '../src/ready/keeper.js'
import { MemoryReadyChatStock, stockKey, type ReadyChatStock } from '../src/ready/stock.js'

interface Fake {
  keeper: ReadyChats
  stock: ReadyChatStock
  created: string[]
  discarded: Array<[string, string]>
  errors: string[]
  clock: { now: number }
  usable: Set<string>
  fail: { create: boolean }
}

function fake (o: Partial<ReadyChatsOptions> = {}): Fake {
  const clock = { now: 1_000_000 }
  const created: string[] = []
  const discarded: Array<[string, string]> = []
  const errors: string[] = []
  const usable = new Set(['a', 'b'])
  const fail = { create: false }
  const stock = o.stock ?? new MemoryReadyChatStock()
  let n = 0
  const keeper = new ReadyChats({
    stock,
    perIdentity: 2,
    maxAgeMs: 10_000,
    now: () => clock.now,
    usable: () => [...usable],
    create: async (identity, model, chatType, signal) => {
      await new Promise((r) => setImmediate(r))
      if (signal.aborted) throw new Error('aborted')
      if (fail.create) throw new Error('refused')
      const id = `${identity}-${model}-${chatType}-${++n}`
      created.push(id)
      return id
    },
    discard: (chatId, identity) => { discarded.push([chatId, identity]) },
    onError: (what) => { errors.push(what) },
    ...o,
  })
  return { keeper, stock, created, discarded, errors, clock, usable, fail }
}

t.test('demand: window, bound, freshness', async (t) => {
  let now = 0
  const d = new Demand(100, 2, () => now)
  t.equal(d.note('m1', 't2t'), true, 'new kind')
  t.equal(d.note('m1', 't2t'), false, 'known kind')
  d.note('m2', 't2t')
  d.note('m3', 'search')
  t.same(d.active().map((k) => k.model), ['m2', 'm3'], 'bounded: the least recent goes')
  t.equal(d.has('m1', 't2t'), false)
  now = 150
  t.equal(d.has('m3', 'search'), false, 'out of the window')
  t.equal(d.note('m3', 'search'), true, 'in demand again counts as new')
  t.same(d.active(), [{ model: 'm3', chatType: 'search' }], 'old kinds forgotten')
})

t.test('take: a miss warms every usable identity, a hit refills the taker', async (t) => {
  const f = fake()
  t.equal(await f.keeper.take('a', 'm', 't2t'), undefined, 'nothing yet')
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2)
  t.equal(await f.stock.count(stockKey('b', 'm', 't2t')), 2)
  const got = await f.keeper.take('a', 'm', 't2t')
  t.match(got, /^a-m-t2t-/)
  const again = await f.keeper.take('a', 'm', 't2t')
  t.not(again, got, 'never the same chat twice')
  f.keeper.started(got!)
  f.keeper.started(again!)
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2, 'refilled')
  t.equal(f.created.length, 6)
  t.same(f.keeper.counts, { hits: 2, misses: 1, created: 6, discarded: 0, failed: 0 })
  t.equal(await f.keeper.take('a', 'm', 't2i'), undefined, 'media chat types are not kept warm')
  t.notOk(WARM_CHAT_TYPES.has('t2i'))
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2i')), 0)
})

t.test('stale chats are discarded on take and by prune; unusable identities and cold kinds lose theirs', async (t) => {
  const f = fake()
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  f.clock.now += 20_000
  t.equal(await f.keeper.take('a', 'm', 't2t'), undefined, 'both stale: discarded, none handed out')
  t.equal(f.discarded.length, 2)
  await f.keeper.idle()
  // b's are stale too: prune discards them; a's fresh ones stay (the first goes back in place).
  await f.keeper.prune()
  t.equal(f.discarded.filter(([, i]) => i === 'b').length, 2)
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2)
  f.usable.delete('a')
  await f.keeper.prune()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 0, 'an identity no longer usable loses its stock')
  f.keeper.refill()
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 0, 'and gets none')
  t.equal(await f.stock.count(stockKey('b', 'm', 't2t')), 2)
  f.clock.now += 10 * 60_000
  await f.keeper.prune()
  t.equal(await f.stock.count(stockKey('b', 'm', 't2t')), 0, 'a kind nobody asked for lately is dropped')
})

t.test('a chat created for an identity that stopped being usable meanwhile is discarded', async (t) => {
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  let n = 0
  const f = fake({ create: async (identity) => { await gate; return `${identity}-${++n}` } })
  await f.keeper.take('a', 'm', 't2t')
  await new Promise((r) => setTimeout(r, 20)) // the refill runs on the next turn; its creations wait at the gate
  f.usable.delete('b')
  open()
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('b', 'm', 't2t')), 0)
  t.equal(f.discarded.filter(([, i]) => i === 'b').length, 2)
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2)
})

t.test('failed creations back off; stock failures are reported, never thrown', async (t) => {
  const f = fake({ failureBackoffMs: 1000, concurrency: 1 })
  f.fail.create = true
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.ok(f.errors.some((e) => e.startsWith('create')))
  const tries = f.keeper.counts.failed
  t.ok(tries >= 1 && tries <= 2, 'the rest of the key\'s queue waits')
  f.fail.create = false
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 0, 'within the backoff nothing is tried')
  f.clock.now += 1500
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2, 'after it, the stock fills')

  const broken: ReadyChatStock = {
    take: async () => { throw new Error('down') },
    add: async () => { throw new Error('down') },
    count: async () => { throw new Error('down') },
    drain: async () => { throw new Error('down') },
    holds: async () => false,
  }
  const g = fake({ stock: broken })
  t.equal(await g.keeper.take('a', 'm', 't2t'), undefined)
  await g.keeper.idle()
  await g.keeper.prune()
  t.equal(await g.keeper.close(true), 0)
  t.same([...new Set(g.errors)].sort(), ['close', 'count', 'prune', 'take'])
  const h = fake({ stock: { ...new MemoryReadyChatStock(), take: async () => undefined, count: async () => 0, drain: async () => [], holds: async () => false, add: async () => { throw new Error('down') } } })
  await h.keeper.take('a', 'm', 't2t')
  await h.keeper.idle()
  t.ok(h.errors.includes('add'))
  t.equal(h.discarded.length, 4, 'a chat the stock would not take is deleted')
})

t.test('close: creations stop; the stock is deleted by a single instance, left when shared', async (t) => {
  const f = fake()
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.equal(await f.keeper.close(true), 4)
  t.equal(f.discarded.length, 4)
  t.equal(f.keeper.enabled, false)
  t.equal(await f.keeper.take('a', 'm', 't2t'), undefined, 'closed')
  f.keeper.refill()
  await f.keeper.prune()

  const g = fake()
  await g.keeper.take('a', 'm', 't2t')
  // Closing while creations run: they are aborted, nothing is kept.
  t.equal(await g.keeper.close(false), 0)
  t.equal(await g.stock.count(stockKey('a', 'm', 't2t')), 0)
  t.equal(g.discarded.length, 0)

  const off = fake({ perIdentity: 0 })
  t.equal(off.keeper.enabled, false)
  t.equal(await off.keeper.take('a', 'm', 't2t'), undefined)
})

t.test('a take by an identity that is not usable (a half-open trial) does not refill its stock', async (t) => {
  const f = fake()
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2)
  const before = f.created.length
  f.usable.delete('a')
  const got = await f.keeper.take('a', 'm', 't2t')
  t.match(got, /^a-m-t2t-/, 'a stocked chat is still handed out')
  f.keeper.started(got!)
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 1, 'not topped up')
  t.equal(f.created.length, before, 'nothing created for it')
})

t.test('close of a replica on a shared stock: the shared chats stay for the others, the local part (stocked during an outage) is deleted', async (t) => {
  const shared = new MemoryReadyChatStock()
  const local = new MemoryReadyChatStock()
  const stock = Object.assign(Object.create(shared) as MemoryReadyChatStock, { drainLocal: async () => await local.drain() })
  const f = fake({ stock })
  await shared.add(stockKey('a', 'm', 't2t'), { chatId: 'shared-1', identity: 'a', createdAt: f.clock.now })
  await local.add(stockKey('b', 'm', 't2t'), { chatId: 'local-1', identity: 'b', createdAt: f.clock.now })
  t.equal(await f.keeper.close(false), 1)
  t.same(f.discarded, [['local-1', 'b']])
  t.equal(await shared.count(stockKey('a', 'm', 't2t')), 1, 'the shared chat stays')
})

t.test('refills wait until the chats handed out have started (a burst goes first), then run together', async (t) => {
  const f = fake({ perIdentity: 3 })
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.equal(f.created.length, 6)
  const x = await f.keeper.take('a', 'm', 't2t')
  const y = await f.keeper.take('a', 'm', 't2t')
  await new Promise((r) => setTimeout(r, 30))
  t.equal(f.created.length, 6, 'nothing created while the chats handed out have not started')
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 1)
  f.keeper.started(x!)
  await new Promise((r) => setTimeout(r, 30))
  t.equal(f.created.length, 6, 'one still pending holds the refill back')
  f.keeper.started('unknown-chat')
  f.keeper.started(y!)
  await f.keeper.idle()
  t.equal(f.created.length, 8, 'both refilled at once after the last one started')
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 3)
  t.equal(f.keeper.counts.hits, 2)
})

t.test('a chat handed out that never starts holds refills back at most refillDeferMaxMs', async (t) => {
  const f = fake({ refillDeferMaxMs: 60 })
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  const t0 = Date.now()
  t.ok(await f.keeper.take('a', 'm', 't2t'))
  await new Promise((r) => setTimeout(r, 20))
  t.equal(f.created.length, 4, 'held back')
  await f.keeper.idle()
  t.ok(Date.now() - t0 >= 55, 'until the bound')
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2, 'refilled after it')
  // A miss with nothing pending refills on the next turn (the bound, 5 s here, is not waited for).
  const g = fake({ refillDeferMaxMs: 5_000 })
  const t1 = Date.now()
  t.equal(await g.keeper.take('a', 'm', 't2t'), undefined)
  await g.keeper.idle()
  t.ok(Date.now() - t1 < 2_500, 'at once')
  t.equal(await g.stock.count(stockKey('a', 'm', 't2t')), 2)
})

t.test('closing drops the refills held back', async (t) => {
  const f = fake()
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  t.ok(await f.keeper.take('a', 'm', 't2t'))
  const closed = f.keeper.close(true)
  await closed
  t.equal(f.created.length, 4, 'no refill after close')
  f.keeper.started('whatever')
  await new Promise((r) => setTimeout(r, 20))
  t.equal(f.created.length, 4)
})

t.test('the refill gate: a chat handed out while a refill is about to run holds it back too; nothing after close', async (t) => {
  const runs: Array<[boolean, string[]]> = []
  const gate = new RefillGate<string>(5_000, (all, jobs) => { runs.push([all, jobs]) })
  gate.ask('k1', 'job1', undefined) // a miss: would run on the next turn
  gate.ask('k2', 'job2', 'c1') // a hit meanwhile: everything waits for it
  t.equal(gate.pending, 1)
  await new Promise((r) => setImmediate(r))
  t.same(runs, [], 'held back')
  t.equal(gate.waiting, true)
  gate.ask('k3', undefined, undefined) // a new kind: everything
  gate.started('c1')
  await new Promise((r) => setImmediate(r))
  t.same(runs, [[true, ['job1', 'job2']]], 'one run with all that was asked for')
  t.equal(gate.waiting, false)
  gate.close()
  gate.ask('k1', 'job1', 'c2')
  t.equal(gate.waiting, false, 'closed: nothing is scheduled')
  t.equal(gate.pending, 0)
})

t.test('a refill asked for while its key is being counted counts again after, without creating too many', async (t) => {
  const f = fake()
  await f.keeper.take('a', 'm', 't2t')
  await f.keeper.idle()
  await f.stock.take(stockKey('a', 'm', 't2t'))
  f.keeper.refill()
  f.keeper.refill() // while the first count of each key is under way
  await f.keeper.idle()
  t.equal(await f.stock.count(stockKey('a', 'm', 't2t')), 2)
  t.equal(await f.stock.count(stockKey('b', 'm', 't2t')), 2)
  t.equal(f.created.length, 5, 'one creation for the one chat missing')
})

t.test('prune deletes the orphans of a shared stock (taken by a timed-out take nobody acknowledged)', async (t) => {
  const memory = new MemoryReadyChatStock()
  const orphans = [{ chatId: 'lost-1', identity: 'a', createdAt: 1_000_000 }, { chatId: 'lost-2', identity: 'b', createdAt: 1_000_000 }]
  let asked = 0
  const f = fake({ stock: Object.assign(memory, { orphans: async () => { asked++; return orphans.splice(0) } }) })
  await f.keeper.prune()
  t.equal(asked, 1)
  t.same(f.discarded, [['lost-1', 'a'], ['lost-2', 'b']], 'each orphan is deleted upstream with its identity')
  await f.keeper.prune()
  t.equal(f.discarded.length, 2, 'an orphan is handed out once')
  const g = fake({ stock: Object.assign(new MemoryReadyChatStock(), { orphans: async () => { throw new Error('down') } }) })
  await g.keeper.prune()
  t.same(g.errors, ['prune'], 'a failing look-up is reported, not thrown')
})
