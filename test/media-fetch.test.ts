/**
 * The media fetcher against a local server (allowed through the allow list) and its SSRF refusals.
 * Refused targets are never contacted: the connector that opens sockets is wrapped here, and the
 * tests assert it was never called for them (no traffic leaves 127.0.0.1).
 */
import t, { type Test } from 'tap'
import { buildConnector } from 'undici'
import { parseAllowList } from '../src/media/address.js'
import { MediaFetchError, MediaFetcher, type LookupAll, type MediaFetcherOptions } from '../src/media/fetch.js'
import { PNG } from './helpers/media-fixtures.js'
import { startMediaServer } from './helpers/media-server.js'

interface Spy { fetcher: MediaFetcher; connects: string[] }

function spyFetcher (t: { teardown: (fn: () => unknown) => void }, o: Omit<Partial<MediaFetcherOptions>, 'allow'> & { allow?: string } = {}): Spy {
  const real = buildConnector({ timeout: 2_000 })
  const connects: string[] = []
  const connector: buildConnector.connector = (opts, cb) => { connects.push(opts.hostname); real(opts, cb) }
  const fetcher = new MediaFetcher({ maxBytes: 1024 * 1024, timeoutMs: 5_000, ...o, allow: parseAllowList(o.allow ?? ''), connector })
  t.teardown(() => fetcher.close())
  return { fetcher, connects }
}

async function refusal (t: Test, p: Promise<unknown>, reason: string, message?: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  t.type(err, MediaFetchError, `refused (${reason})`)
  t.equal((err as MediaFetchError).reason, reason)
  if (message) t.match((err as Error).message, message)
}

t.test('fetches from an allowed local server', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const { fetcher, connects } = spyFetcher(t, { allow: '127.0.0.1' })
  const got = await fetcher.fetch(`${srv.url}/file/png`)
  t.same(got.bytes, PNG)
  t.equal(got.url, `${srv.url}/file/png`)
  t.same(connects, ['127.0.0.1'])
})

t.test('an allowed host name connects to the address it was checked at', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const lookup: LookupAll = async (name) => (name === 'images.intranet.test' ? [{ address: '127.0.0.1' }] : [])
  const { fetcher, connects } = spyFetcher(t, { allow: 'images.intranet.test', lookup })
  const got = await fetcher.fetch(`http://images.intranet.test:${srv.port}/file/png`)
  t.same(got.bytes, PNG)
  t.same(connects, ['127.0.0.1'], 'the socket went to the checked address')
  t.same(srv.hosts, [`images.intranet.test:${srv.port}`], 'the Host header keeps the name')
  const wildcard = spyFetcher(t, { allow: '*.intranet.test', lookup })
  t.same((await wildcard.fetcher.fetch(`http://images.intranet.test:${srv.port}/file/png`)).bytes, PNG)
})

t.test('SSRF refusals: no connection is attempted', async (t) => {
  const lookup: LookupAll = async (name) => {
    if (name === 'rebind.test') return [{ address: '10.0.0.5' }]
    if (name === 'mixed.test') return [{ address: '93.184.215.14' }, { address: '192.168.0.10' }]
    if (name === 'v6.test') return [{ address: '::ffff:127.0.0.1' }]
    if (name === 'empty.test') return []
    throw new Error('ENOTFOUND')
  }
  const { fetcher, connects } = spyFetcher(t, { lookup })
  await refusal(t, fetcher.fetch('http://127.0.0.1/x.png'), 'forbidden', /127\.0\.0\.1 is a loopback address/)
  await refusal(t, fetcher.fetch('http://[::1]:8080/x.png'), 'forbidden', /loopback/)
  await refusal(t, fetcher.fetch('http://10.1.2.3/x.png'), 'forbidden', /private/)
  await refusal(t, fetcher.fetch('http://169.254.169.254/latest/meta-data/'), 'forbidden', /link-local/)
  await refusal(t, fetcher.fetch('https://100.64.1.1/x.png'), 'forbidden', /CGNAT/)
  await refusal(t, fetcher.fetch('http://[fd00::1]/x.png'), 'forbidden', /ULA/)
  await refusal(t, fetcher.fetch('http://[::ffff:169.254.169.254]/'), 'forbidden', /link-local/)
  await refusal(t, fetcher.fetch('http://0.0.0.0:80/'), 'forbidden', /unspecified/)
  await refusal(t, fetcher.fetch('http://rebind.test/x.png'), 'forbidden', /rebind\.test resolves to a private address/)
  await refusal(t, fetcher.fetch('http://mixed.test/x.png'), 'forbidden', /private/)
  await refusal(t, fetcher.fetch('http://v6.test/x.png'), 'forbidden', /loopback/)
  await refusal(t, fetcher.fetch('http://nowhere.test/x.png'), 'network', /could not be resolved/)
  await refusal(t, fetcher.fetch('http://empty.test/x.png'), 'network', /no address/)
  await refusal(t, fetcher.fetch('file:///etc/passwd'), 'scheme', /not `file:`/)
  await refusal(t, fetcher.fetch('gopher://127.0.0.1:70/_x'), 'scheme', /not `gopher:`/)
  await refusal(t, fetcher.fetch('ftp://example.com/x.png'), 'scheme')
  await refusal(t, fetcher.fetch('not a url'), 'scheme', /not valid/)
  t.same(connects, [], 'no socket was opened for any of them')
})

t.test('a name that resolves to loopback (localhost) is refused by the real resolver', async (t) => {
  const { fetcher, connects } = spyFetcher(t)
  await refusal(t, fetcher.fetch('http://localhost:9/x.png'), 'forbidden', /localhost resolves to a loopback address/)
  t.same(connects, [])
})

t.test('redirects: followed up to 3, each hop checked', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const { fetcher, connects } = spyFetcher(t, { allow: '127.0.0.1' })
  const three = await fetcher.fetch(`${srv.url}/redirect/3`)
  t.same(three.bytes, PNG)
  t.equal(three.url, `${srv.url}/file/png`)
  await refusal(t, fetcher.fetch(`${srv.url}/redirect/4`), 'redirects', /more than 3 redirects/)
  await refusal(t, fetcher.fetch(`${srv.url}/nolocation`), 'status', /without a location/)
  const before = connects.length
  await refusal(t, fetcher.fetch(`${srv.url}/to?url=${encodeURIComponent('http://10.0.0.1/secret.png')}`), 'forbidden', /private/)
  await refusal(t, fetcher.fetch(`${srv.url}/to?url=${encodeURIComponent('http://169.254.169.254/latest/')}`), 'forbidden', /link-local/)
  await refusal(t, fetcher.fetch(`${srv.url}/to?url=${encodeURIComponent('file:///etc/passwd')}`), 'scheme')
  t.ok(connects.slice(before).every((h) => h === '127.0.0.1'), 'only the allowed server was ever connected to')
})

t.test('a redirect to loopback is refused when only another address is allowed', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const lookup: LookupAll = async () => [{ address: '127.0.0.1' }]
  const { fetcher, connects } = spyFetcher(t, { allow: 'media.test', lookup })
  await refusal(t, fetcher.fetch(`http://media.test:${srv.port}/to?url=${encodeURIComponent(`http://127.0.0.1:${srv.port}/file/png`)}`), 'forbidden', /loopback/)
  t.same(connects, ['127.0.0.1'], 'only the first, allowed hop connected')
  t.same(srv.hits, ['/to'])
})

t.test('size cap while reading, by declared length and by bytes read', async (t) => {
  const srv = await startMediaServer(t, { big: Buffer.alloc(5000, 1), ok: Buffer.alloc(4096, 1) })
  const { fetcher } = spyFetcher(t, { allow: '127.0.0.1', maxBytes: 4096 })
  t.equal((await fetcher.fetch(`${srv.url}/file/ok`)).bytes.length, 4096, 'exactly the cap is fine')
  await refusal(t, fetcher.fetch(`${srv.url}/file/big`), 'too_large', /larger than 4096 bytes \(UPLOAD_MAX_BYTES\)/)
  await refusal(t, fetcher.fetch(`${srv.url}/stream/1000000`), 'too_large')
})

t.test('HTTP errors, timeouts and the caller abort', async (t) => {
  const srv = await startMediaServer(t, {})
  const { fetcher } = spyFetcher(t, { allow: '127.0.0.1', timeoutMs: 300 })
  await refusal(t, fetcher.fetch(`${srv.url}/missing`), 'status', /HTTP 404/)
  const started = Date.now()
  await refusal(t, fetcher.fetch(`${srv.url}/slow`), 'timeout', /300 ms \(MEDIA_FETCH_TIMEOUT_MS\)/)
  t.ok(Date.now() - started < 3_000, 'gave up at the timeout')
  const ctl = new AbortController()
  const reason = new Error('client went away')
  setTimeout(() => ctl.abort(reason), 50)
  const err = await fetcher.fetch(`${srv.url}/slow`, ctl.signal).catch((e: unknown) => e)
  t.equal(err, reason, 'the caller abort surfaces as its reason')
  const gone = new AbortController()
  gone.abort(reason)
  t.equal(await fetcher.fetch(`${srv.url}/file/x`, gone.signal).catch((e: unknown) => e), reason, 'an aborted signal fails at once')
})

t.test('a connection failure is a network error', async (t) => {
  const { fetcher, connects } = spyFetcher(t, { allow: '127.0.0.1' })
  // Port 1 on loopback: nothing listens there, the connection is refused.
  await refusal(t, fetcher.fetch('http://127.0.0.1:1/x'), 'network', /could not be fetched/)
  t.same(connects, ['127.0.0.1'])
})

t.test('close drops the agent: later fetches fail', async (t) => {
  const srv = await startMediaServer(t, { png: PNG })
  const { fetcher } = spyFetcher(t, { allow: '127.0.0.1' })
  await fetcher.close()
  await refusal(t, fetcher.fetch(`${srv.url}/file/png`), 'network', /destroyed/)
})
