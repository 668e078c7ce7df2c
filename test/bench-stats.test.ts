/** The benchmark's pure helpers (bench/stats.ts): window order, medians, ratios, memory per stream, tables. */
import t from 'tap'
import { fmt, growthPerStreamKiB, interleaveOrder, markdownTable, median, ratio } from '../bench/stats.js'

t.test('interleaveOrder alternates which side goes first in each pair', async (t) => {
  t.same(interleaveOrder(1), ['gateway', 'floor'])
  t.same(interleaveOrder(3), ['gateway', 'floor', 'floor', 'gateway', 'gateway', 'floor'])
  const four = interleaveOrder(4)
  t.equal(four.filter((s) => s === 'gateway').length, 4)
  t.equal(four.filter((s) => s === 'floor').length, 4)
  t.throws(() => interleaveOrder(0), RangeError)
  t.throws(() => interleaveOrder(1.5), RangeError)
})

t.test('median of odd and even counts, unsorted input left alone', async (t) => {
  const xs = [0.9, 0.3, 0.5]
  t.equal(median(xs), 0.5)
  t.same(xs, [0.9, 0.3, 0.5])
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([7]), 7)
  t.ok(Number.isNaN(median([])))
})

t.test('ratio is NaN unless both sides are positive and finite', async (t) => {
  t.equal(ratio(0.75, 0.5), 1.5)
  t.ok(Number.isNaN(ratio(1, 0)))
  t.ok(Number.isNaN(ratio(0, 1)))
  t.ok(Number.isNaN(ratio(NaN, 1)))
  t.ok(Number.isNaN(ratio(1, Infinity)))
})

t.test('growthPerStreamKiB: bytes over streams, NaN without streams', async (t) => {
  t.equal(growthPerStreamKiB(100 * 2 ** 20, 160 * 2 ** 20, 1024), 60)
  t.equal(growthPerStreamKiB(2048, 1024, 1), -1)
  t.ok(Number.isNaN(growthPerStreamKiB(0, 1024, 0)))
})

t.test('fmt and markdownTable', async (t) => {
  t.equal(fmt(1.23456, 2), '1.23')
  t.equal(fmt(NaN, 2), '—')
  t.equal(fmt(Infinity, 0), '—')
  t.equal(markdownTable(['name', 'n'], [['a', '10'], ['long name', '2']]), [
    '| name      |  n |',
    '| --------- | -: |',
    '| a         | 10 |',
    '| long name |  2 |',
  ].join('\n'))
  t.equal(markdownTable(['x', 'y'], [['only x']]), '| x      |  y |\n| ------ | -: |\n| only x |    |')
  t.equal(markdownTable(['x'], [[]]), '| x  |\n| -- |\n|    |')
})
