/** The TTFT benchmark's pure helpers: nearest-rank percentiles and the report's verdict lines. */
import t from 'tap'
import { percentile } from '../bench/stats.js'
import { ttftReport } from '../bench/ttft-report.js'

t.test('percentile: nearest rank', async (t) => {
  t.ok(Number.isNaN(percentile([], 50)))
  t.equal(percentile([5], 99), 5)
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i)
  t.equal(percentile(xs, 50), 50)
  t.equal(percentile(xs, 99), 99)
  t.equal(percentile(xs, 100), 100)
  t.equal(percentile(xs, 0), 1)
})

t.test('the TTFT report compares each gateway row with the floor at its concurrency', async (t) => {
  const rows = [
    { target: 'simulator first frame (floor)', clients: 1, samples: [300, 302, 301], errors: 0 },
    { target: 'simulator first frame (floor)', clients: 50, samples: [310, 320, 330], errors: 0 },
    { target: 'gateway, no ready chats', clients: 1, samples: [455, 460, 470], errors: 0 },
    { target: 'gateway, ready chats (25 per account)', clients: 1, samples: [303, 305, 306], errors: 0 },
    { target: 'gateway, ready chats (25 per account)', clients: 50, samples: [340, 350, 360], errors: 1 },
    { target: 'gateway, ready chats (25 per account)', clients: 7, samples: [1], errors: 0 },
  ]
  const out = ttftReport({ rows, firstFrameMs: 300, chatNewMs: 150, problems: [] }).join('\n')
  t.match(out, /\| gateway, no ready chats +\| +1 \| +3 \| +460\.0 \|/)
  t.match(out, /\+159\.0 ms/)
  t.match(out, /Ready chats at 1 client\(s\): \+4\.0 ms p50 over the floor \(target <= 5 ms\) → MET/)
  t.match(out, /Ready chats at 50 client\(s\): \+30\.0 ms p50 over the floor \(target <= 15 ms\) → MISSED/)
  t.notMatch(out, /at 7 client/, 'no floor, no verdict')
})

t.test('the TTFT report splits the added time into the request path and the first-frame path', async (t) => {
  const rows = [
    { target: 'simulator first frame (floor)', clients: 50, samples: [330, 340, 350], errors: 0, toUpstream: [10, 12, 14], fromUpstream: [320, 328, 336] },
    { target: 'gateway, ready chats (25 per account)', clients: 50, samples: [345, 352, 360], errors: 0, toUpstream: [15, 17, 19], fromUpstream: [330, 335, 341] },
    { target: 'gateway, ready chats (25 per account)', clients: 1, samples: [320], errors: 0 },
    { target: 'simulator first frame (floor)', clients: 1, samples: [322], errors: 0 },
  ]
  const out = ttftReport({ rows, firstFrameMs: 300, chatNewMs: 150, problems: [] }).join('\n')
  t.match(out, /\| gateway, ready chats \(25 per account\) +\| +50 \| +3 \| +352\.0 \| +360\.0 \| +360\.0 \| +\+12\.0 ms \| +17\.0 \| +335\.0 \| +0 \|/)
  t.match(out, /Ready chats at 50 client\(s\): \+12\.0 ms p50 over the floor \(request path \+5\.0 ms, first-frame path \+7\.0 ms\) \(target <= 15 ms\) → MET/)
  t.match(out, /Ready chats at 1 client\(s\): -2\.0 ms p50 over the floor \(target <= 5 ms\) → MET/, 'no split without the simulator\'s times')
  t.match(out, /\| simulator first frame \(floor\) +\| +1 \| +1 \| +322\.0 \|.*\| +— \| +— \| +0 \|/)
})
