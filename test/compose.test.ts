/**
 * docker-compose.yml's `replicas` profile, checked without Docker: its structure (Valkey, two
 * replicas, the Caddy proxy and its Caddyfile), every variable it sets being a configuration key,
 * and then the profile run with local binaries: redis-server in place of Valkey, each replica as
 * `node dist/src/server.js` with exactly the environment Compose would give it (the image's ENV,
 * then `.env` — here `.env.example` with the required values filled in —, then the service's
 * `environment`; only addresses adapted), and a round-robin proxy in Node in place of Caddy,
 * following the Caddyfile. A conversation goes through the proxy: turn 1 on one replica, turn 2 on
 * the other, in the same upstream chat.
 */
import { readFileSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { join } from 'node:path'
import { parseEnv } from 'node:util'
import t from 'tap'
import { parse } from 'yaml'
import { ConfigSchema, loadConfig } from '../src/config.js'
import { startRedis } from './helpers/redis.js'
import { completions, ready, root, spawnServer, until, type Replica } from './helpers/replicas.js'
import { postJson, startSim } from './helpers/setup.js'
import { skipWithout } from './helpers/system.js'

interface Service {
  profiles?: string[]
  image?: string
  command?: string | string[]
  environment?: Record<string, string>
  env_file?: Array<{ path: string; required?: boolean }>
  depends_on?: string[]
  ports?: string[]
  volumes?: string[]
}

const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> }
const services = compose.services
const inProfile = Object.entries(services).filter(([, s]) => s.profiles?.includes('replicas')).map(([name]) => name)
const replicaNames = inProfile.filter((name) => services[name]!.environment?.REDIS_URL !== undefined)

/** The runtime stage's `ENV` of the Dockerfile: what every container starts with. */
function imageEnv (): Record<string, string> {
  const stages = readFileSync(join(root, 'Dockerfile'), 'utf8').split(/^FROM /m)
  const env: Record<string, string> = {}
  for (const line of stages.at(-1)!.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const m of line.slice(4).matchAll(/([A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!
  }
  return env
}

/** The Caddyfile mounted into the proxy (the caddy image runs /etc/caddy/Caddyfile), comments dropped. */
function caddyfile (): string {
  const mount = services.proxy!.volumes?.find((v) => v.endsWith(':/etc/caddy/Caddyfile:ro'))
  if (!mount) throw new Error('the proxy mounts no Caddyfile')
  const text = readFileSync(join(root, mount.split(':')[0]!), 'utf8')
  return text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n')
}

/** What the Caddyfile answers when no replica can take a request (`handle_errors`). */
function caddyError (caddy: string): { status: number; headers: Record<string, string>; body: string } {
  const block = /\thandle_errors \{\n([\s\S]*?)\n\t\}/.exec(caddy)![1]!
  const headers = Object.fromEntries([...block.matchAll(/^\t\theader (\S+) (\S+)$/gm)].map((m) => [m[1]!.toLowerCase(), m[2]!]))
  const respond = /^\t\trespond `([^`]*)` (\d{3})$/m.exec(block)!
  return { status: Number(respond[2]), headers, body: respond[1]! }
}

/** `.env` as an operator fills it in from `.env.example` (compose reads it as `env_file`). */
function dotenv (fill: Record<string, string>): Record<string, string> {
  const base = parseEnv(readFileSync(join(root, '.env.example'), 'utf8')) as Record<string, string>
  return { ...base, ...fill }
}

/** What Compose gives the container: image ENV < env_file < environment. */
const containerEnv = (name: string, fill: Record<string, string>): Record<string, string> => ({ ...imageEnv(), ...dotenv(fill), ...services[name]!.environment })

t.test('the replicas profile: Valkey, two replicas on it, a proxy over both', async (t) => {
  t.same(inProfile.sort(), ['proxy', 'replica-1', 'replica-2', 'valkey'])
  t.equal(services['qwen-gateway']!.profiles, undefined, 'the single service stays the default')
  t.same(replicaNames, ['replica-1', 'replica-2'])
  const ids = replicaNames.map((n) => services[n]!.environment!.REPLICA_ID)
  t.equal(new Set(ids).size, 2, 'each replica has its own REPLICA_ID')
  for (const name of replicaNames) {
    const s = services[name]!
    const url = new URL(s.environment!.REDIS_URL!)
    t.equal(url.hostname, 'valkey', `${name} uses the valkey service`)
    t.equal(url.port, '6379')
    t.ok(s.depends_on?.includes('valkey'), `${name} starts after valkey`)
    t.same(s.env_file, [{ path: '.env', required: false }], `${name} reads .env (STATE_SECRET, COOKIE)`)
    for (const key of Object.keys(s.environment!)) t.ok(key in ConfigSchema.properties, `${name}: ${key} is a configuration key`)
    t.equal(s.environment!.STATE_FILE, '', `${name}: no state file of its own (.env.example sets one)`)
  }
  t.match(services.valkey!.image, /^(valkey\/valkey|redis):/)
  t.same(services.valkey!.command, ['valkey-server', '--appendonly', 'yes', '--appendfsync', 'everysec'], 'AOF everysec')

  const caddy = caddyfile()
  t.equal(caddy.split('{').length, caddy.split('}').length, 'braces balance')
  t.match(caddy, /^:8080 \{\n\treverse_proxy /, 'one site on :8080 with a reverse proxy')
  t.same(services.proxy!.ports, ['8080:8080'], 'the published port is the site\'s')
  const upstreams = /reverse_proxy ([^{]+)\{/.exec(caddy)![1]!.trim().split(/\s+/)
  t.same(upstreams, replicaNames.map((n) => `${n}:${services[n]!.environment!.PORT}`), 'every replica on the port it listens on')
  for (const line of ['lb_policy round_robin', 'lb_try_duration 5s', 'health_uri /ready', 'health_interval 5s']) t.match(caddy, `\n\t\t${line}\n`, line)
  const e = caddyError(caddy)
  t.equal(e.status, 503)
  t.same(e.headers, { 'content-type': 'application/json', 'retry-after': '5' })
  t.match(JSON.parse(e.body), { error: { message: /replica/, type: 'server_error', param: null, code: 'no_ready_replica' } }, 'an OpenAI error envelope')
  t.same(services.proxy!.depends_on, replicaNames)
})

t.test('each replica\'s environment, with .env filled in, is a valid Redis configuration', async (t) => {
  for (const name of replicaNames) {
    const env = containerEnv(name, { COOKIE: 'token=abc', STATE_SECRET: 'same-on-every-replica' })
    const loaded = loadConfig({ env, readFile: () => undefined })
    t.equal(loaded.options.redisUrl, 'redis://valkey:6379', name)
    t.equal(loaded.options.replicaId, name)
    t.equal(loaded.options.stateSecret, 'same-on-every-replica')
    t.equal(loaded.server.port, 8000)
    t.equal(loaded.server.host, '0.0.0.0', 'reachable from the proxy container')
    t.equal(loaded.stateFile, undefined, 'no per-container state file next to Redis')
  }
})

/** Caddy's part: round robin over the upstreams whose /ready answered 200 at the last check; its error answer when none did. */
async function roundRobin (t: { teardown: (fn: () => unknown) => void }, upstreams: Array<{ name: string; url: string }>): Promise<string> {
  const none = caddyError(caddyfile())
  const healthy = new Set<string>()
  const check = async (): Promise<void> => {
    await Promise.all(upstreams.map(async (u) => {
      const ok = await fetch(`${u.url}/ready`).then((r) => r.ok, () => false)
      if (ok) healthy.add(u.name)
      else healthy.delete(u.name)
    }))
  }
  await check()
  const timer = setInterval(() => { void check() }, 200)
  let next = 0
  const server: Server = createServer((req, res) => {
    const live = upstreams.filter((u) => healthy.has(u.name))
    if (live.length === 0) return res.writeHead(none.status, none.headers).end(none.body)
    const u = live[next++ % live.length]!
    const target = new URL(req.url ?? '/', u.url)
    const out = httpRequest(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, { ...up.headers, 'x-served-by': u.name })
      up.pipe(res)
    })
    out.on('error', () => { res.destroy() })
    req.pipe(out)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    clearInterval(timer)
    await new Promise((resolve) => server.close(resolve))
  })
  const addr = server.address()
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
}

t.test('the profile run with local binaries: both replicas share state behind the proxy', { skip: skipWithout('redis-server', 'redis-server') }, async (t) => {
  const sim = await startSim(t)
  const redis = await startRedis(t)
  const fill = { COOKIE: sim.accounts.map((a) => a.cookie).join('|||'), STATE_SECRET: 'same-on-every-replica', QWEN_BASE_URL: sim.url }
  const replicas: Array<{ name: string; r: Replica }> = await Promise.all(replicaNames.map(async (name) => {
    const env = containerEnv(name, fill)
    // Only addresses change: a free port on loopback, the local redis-server for valkey:6379.
    const adapted = { ...env, PORT: '0', HOST: '127.0.0.1', REDIS_URL: env.REDIS_URL!.replace('valkey:6379', `127.0.0.1:${redis.port}`) }
    return { name, r: await spawnServer(t, adapted) }
  }))
  for (const { name, r } of replicas) {
    const s = await until(async () => { const s = await ready(r); return s.store === 'redis' && s.status === 'ready' ? s : undefined }, 30_000, `${name} ready`)
    t.equal(s.replica, name, `${name} names itself in /ready`)
    const loaded = r.out().split('\n').find((l) => l.includes('"configuration loaded"'))
    t.match(JSON.parse(loaded!), { store: 'redis', stateFile: null, tokensPersisted: true }, `${name}: Redis, no state file, tokens sealed`)
  }
  const proxy = await roundRobin(t, replicas.map(({ name, r }) => ({ name, url: r.url })))

  const send = async (messages: Array<{ role: string; content: string }>): Promise<{ by: string | null; content: string }> => {
    const res = await postJson(`${proxy}/v1/chat/completions`, { model: 'qwen3-max', messages })
    t.equal(res.status, 200)
    const body = await res.json() as { choices: Array<{ message: { content: string } }> }
    return { by: res.headers.get('x-served-by'), content: body.choices[0]!.message.content }
  }
  const conversation = async (n: number): Promise<{ by: Array<string | null>; chats: string[]; clean: boolean }> => {
    sim.clearLog()
    const marks = replicas.map(({ r }) => r.out().length)
    const first = [{ role: 'user', content: `remember the word green (${n})` }]
    const one = await send(first)
    const two = await send([...first, { role: 'assistant', content: one.content }, { role: 'user', content: 'which word?' }])
    const chats = completions(sim.log()).map((e) => (e.body as { chat_id: string }).chat_id)
    // A replica that lost Redis for a moment (a reply slower than the timeout on a loaded machine) proves nothing here.
    const clean = replicas.every(({ r }, i) => !r.out().slice(marks[i]).includes('degraded-local'))
    return { by: [one.by, two.by], chats, clean }
  }
  let c = await conversation(1)
  for (let n = 2; !c.clean && n <= 3; n++) {
    t.comment(`conversation ${n - 1}: a replica served from local state for a moment (loaded machine); again`)
    c = await conversation(n)
  }
  t.ok(c.clean, 'both replicas shared Redis throughout')
  t.not(c.by[0], c.by[1], 'round robin: the two turns went through different replicas')
  t.same([...c.by].sort(), replicaNames)
  t.equal(c.chats.length, 2)
  t.equal(c.chats[1], c.chats[0], 'turn 2 continued the upstream chat turn 1 opened on the other replica')

  // Every account rate limited: both replicas answer /ready 503, and the proxy its envelope.
  for (const a of sim.accounts) sim.queue(a.email, { fail: 'rate_limited', rateLimitHours: 1 })
  for (let k = 0; k < 4 && completions(sim.log()).filter((e) => e.status === 429).length < sim.accounts.length; k++) {
    await (await postJson(`${proxy}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: `limit ${k}` }] })).arrayBuffer()
  }
  await until(async () => {
    const res = await postJson(`${proxy}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'anyone?' }] })
    const body = await res.json() as { error?: { code?: string } }
    return body.error?.code === 'no_ready_replica' ? { res, body } : undefined
  }, 10_000, 'the proxy to find no ready replica').then(({ res }) => {
    t.equal(res.status, 503)
    t.equal(res.headers.get('retry-after'), '5')
  })
})
