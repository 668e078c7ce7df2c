/**
 * Waiting on another replica's token refresh (the shared store holds the lease): the new token is
 * taken as soon as it is stored, and a closing gateway stops waiting at the next poll.
 */
import t from 'tap'
import { IdentityPool, makeIdentity } from '../src/pool.js'
import { TokenCipher } from '../src/state.js'
import type { SharedTokens, StoredToken } from '../src/store/tokens.js'
import { TokenService } from '../src/tokens.js'
import type { UpstreamClient } from '../src/upstream/client.js'

// The wait's timers are unref'd (they never hold a closing process open): keep this one alive meanwhile.
const keepAlive = setInterval(() => {}, 1000)
t.teardown(() => { clearInterval(keepAlive) })

function setup () {
  const identity = makeIdentity({ cookie: 'token=old-cookie-token' })
  const pool = new IdentityPool([identity], { now: () => Date.now() })
  const cipher = new TokenCipher('secret', 'salt')
  let stored: StoredToken | undefined
  const store: SharedTokens = {
    get: async () => stored,
    lease: async () => false, // another replica holds it
    put: async () => 'ok',
    release: async () => {},
  }
  let fetched = 0
  const client = { getToken: async () => { fetched++; throw new Error('must not fetch while waiting') } } as unknown as UpstreamClient
  const tokens = new TokenService(client, pool, {
    now: () => Date.now(),
    concurrency: 1,
    log: { info: () => {}, warn: () => {} },
    shared: { store, cipher, leaseMs: 30_000, pollMs: 20 },
  })
  return { identity, tokens, cipher, setStored: (s: StoredToken) => { stored = s }, fetches: () => fetched }
}

t.test('the token another replica stores is taken at the next poll', async (t) => {
  const s = setup()
  const p = s.tokens.refresh(s.identity)
  await new Promise((r) => setTimeout(r, 60))
  s.setStored({ sealed: s.cipher.encrypt('new-token', s.identity.id), exp: Date.now() + 3_600_000, ver: 1 })
  const r = await p
  t.equal(r.success, true)
  t.equal(s.identity.token, 'new-token')
  t.equal(s.fetches(), 0)
})

t.test('closing ends the wait at once instead of holding shutdown for the lease', async (t) => {
  const s = setup()
  const started = Date.now()
  const p = s.tokens.refresh(s.identity)
  await new Promise((r) => setTimeout(r, 50))
  s.tokens.close()
  const r = await p
  t.equal(r.success, false)
  t.match(r.error, /closing/)
  t.ok(Date.now() - started < 5_000, 'not the 30 s lease')
  t.equal(s.fetches(), 0)
})
