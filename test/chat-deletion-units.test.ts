/** The chat-deletion pieces alone: the deleter's queue, limits and close; retention's bookkeeping. */
import t from 'tap'
import { ChatDeleter, ChatRetention, type DeletionReport } from '../src/chat-deletion/index.js'

function deferred (): { promise: Promise<boolean>; resolve: (v: boolean) => void } {
  let resolve!: (v: boolean) => void
  const promise = new Promise<boolean>((r) => { resolve = r })
  return { promise, resolve }
}

t.test('deleter: at most `concurrency` deletions at once; duplicates ignored; flush waits', async (t) => {
  const running: Array<{ id: string; d: ReturnType<typeof deferred> }> = []
  const reports: DeletionReport[] = []
  const d = new ChatDeleter({
    remove: (id) => { const x = deferred(); running.push({ id, d: x }); return x.promise },
    report: (r) => reports.push(r),
    concurrency: 2,
    retryDelayMs: 1,
  })
  t.equal(await d.flush(10), true, 'nothing pending')
  for (const id of ['a', 'b', 'c', 'a']) d.enqueue(id, 'i')
  t.equal(d.size, 3, 'a is pending once')
  t.same(running.map((r) => r.id), ['a', 'b'], 'two at a time')
  t.equal(await d.flush(20), false, 'deadline passed')
  const flushed = d.flush(1000)
  running[0]!.d.resolve(true)
  await new Promise((r) => setImmediate(r))
  t.same(running.map((r) => r.id), ['a', 'b', 'c'], 'the next one starts when one ends')
  running[1]!.d.resolve(false)
  running[2]!.d.resolve(true)
  t.equal(await flushed, true)
  t.same(reports.map((r) => [r.chatId, r.result]), [['a', 'deleted'], ['b', 'gone'], ['c', 'deleted']])
})

t.test('deleter: close aborts running deletions, clears retries and ignores later work', async (t) => {
  const reports: DeletionReport[] = []
  let signal: AbortSignal | undefined
  let fail = true
  const d = new ChatDeleter({
    remove: (id, _i, s) => {
      if (id === 'retry' && fail) { fail = false; return Promise.reject(new Error('nope')) }
      signal = s
      return new Promise((_r, reject) => s.addEventListener('abort', () => reject(new Error('aborted'))))
    },
    report: (r) => reports.push(r),
    retryDelayMs: 60_000,
  })
  d.enqueue('hang', 'i')
  d.enqueue('retry', 'i')
  await new Promise((r) => setImmediate(r))
  t.equal(d.size, 2, 'one running, one waiting for its retry')
  t.equal(d.close(), 2, 'both left undone')
  t.equal(signal?.aborted, true)
  await new Promise((r) => setImmediate(r))
  t.same(reports, [], 'an aborted deletion is not reported as failed')
  d.enqueue('late', 'i')
  t.equal(d.size, 0)
})

t.test('retention: bookkeeping edges', async (t) => {
  const removed: string[] = []
  const r = new ChatRetention({ remove: (id) => removed.push(id), now: () => 0, mediaDelayMs: 0, maxTracked: 2 })
  r.created('a', 'i', 'r1')
  r.created('b', 'i', 'r1')
  r.created('c', 'i', 'r2')
  t.equal(r.size, 2, 'the oldest is forgotten beyond the bound')
  t.ok(r.held('b'), 'a chat whose request runs is held')
  r.requestOver('r1')
  t.same(removed, ['b'], 'a forgotten chat is never deleted blindly')
  r.requestOver('r1')
  r.requestOver('unknown')
  for (const fn of [r.keep, r.release, r.linked, r.taskStarted, r.taskEnded]) fn.call(r, 'unknown')
  r.taskEnded('c')
  t.ok(r.held('c'), 'ending a task that never started changes nothing')
  r.linked('c')
  r.requestOver('r2')
  t.same(removed, ['b', 'c'], 'a zero media delay deletes at once')
  t.equal(r.close(), 0)

  const later = new ChatRetention({ remove: (id) => removed.push(id), now: () => 0, mediaDelayMs: 60_000 })
  later.created('m', 'i', 'r')
  later.linked('m')
  later.requestOver('r')
  later.release('m')
  t.equal(later.close(), 1, 'one chat was waiting for its media delay')
  t.notOk(removed.includes('m'))
})
