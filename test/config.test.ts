import t from 'tap'
import { ConfigError, cleanCookie, loadConfig, parseCookies, type ConfigSources } from '../src/config.js'
import { resolveOptions } from '../src/options.js'

const files = (map: Record<string, string>) => (p: string) => map[p]

t.test('defaults with nothing configured', async (t) => {
  const c = loadConfig({ env: {}, readFile: files({}) })
  t.same(c.server, { port: 8000, host: '0.0.0.0', logLevel: 'info' })
  t.same(c.options.cookies, [])
  t.equal(c.cookieSource, 'none')
  t.equal(c.configFile, false)
  const r = resolveOptions(c.options)
  t.equal(r.serverMode, true)
  t.equal(r.qwenBaseUrl, 'https://chat.qwen.ai')
  t.equal(r.visionFallbackModel, 'qwen3-vl-plus')
  t.equal(r.thinkingOutput, 'reasoning_content')
  t.equal(r.tokenRefreshIntervalHours, 24)
  t.equal(r.bodyLimitBytes, 32 * 1024 * 1024)
  t.equal(r.uploadMaxBytes, 20 * 1024 * 1024)
  t.equal(r.apiKey, undefined)
})

t.test('env overrides config.json key by key, which overrides defaults', async (t) => {
  const c = loadConfig({
    env: { API_KEY: 'sk-env', DEBUG_MODE: 'yes', QWEN_BASE_URL: 'http://127.0.0.1:9/' },
    readFile: files({ 'config.json': JSON.stringify({ API_KEY: 'sk-file', SERVER_MODE: false, TOKEN_REFRESH_INTERVAL_HOURS: 6, VISION_FALLBACK_MODEL: 'qwen3-vl-max', SERVER_PORT: 9001 }) }),
  })
  t.equal(c.options.apiKey, 'sk-env', 'env wins')
  t.equal(c.options.serverMode, false, 'config.json fills what env leaves out')
  t.equal(c.options.tokenRefreshIntervalHours, 6)
  t.equal(c.options.visionFallbackModel, 'qwen3-vl-max')
  t.equal(c.options.debugMode, true)
  t.equal(c.server.logLevel, 'debug', 'DEBUG_MODE=true means debug logs')
  t.equal(c.server.port, 9001)
  t.equal(resolveOptions(c.options).qwenBaseUrl, 'http://127.0.0.1:9', 'trailing slash removed')
  t.ok(c.configFile)
})

t.test('port precedence: PORT > SERVER_PORT (env) > SERVER_PORT (config.json) > 8000', async (t) => {
  const file = files({ 'config.json': '{"SERVER_PORT": 7001}' })
  t.equal(loadConfig({ env: { PORT: '7003', SERVER_PORT: '7002' }, readFile: file }).server.port, 7003)
  t.equal(loadConfig({ env: { SERVER_PORT: '7002' }, readFile: file }).server.port, 7002)
  t.equal(loadConfig({ env: {}, readFile: file }).server.port, 7001)
})

t.test('booleans accept true/false/1/0/yes/no in any case', async (t) => {
  for (const [raw, want] of [['TRUE', true], ['0', false], ['No', false], ['yes', true], ['1', true], ['false', false]] as const) {
    t.equal(loadConfig({ env: { SERVER_MODE: raw }, readFile: files({}) }).options.serverMode, want, raw)
  }
})

t.test('REDIS_REQUIRED and RATE_LIMIT_ON_STORE_ERROR: defaults, env values, bad values', async (t) => {
  const d = resolveOptions(loadConfig({ env: {}, readFile: files({}) }).options)
  t.same([d.redisRequired, d.rateLimitOnStoreError], [false, 'local'])
  const c = loadConfig({ env: { REDIS_REQUIRED: 'yes', RATE_LIMIT_ON_STORE_ERROR: 'deny' }, readFile: files({}) })
  t.same([c.options.redisRequired, c.options.rateLimitOnStoreError], [true, 'deny'])
  t.equal(loadConfig({ env: { RATE_LIMIT_ON_STORE_ERROR: 'allow' }, readFile: files({}) }).options.rateLimitOnStoreError, 'allow')
  for (const [k, v] of [['RATE_LIMIT_ON_STORE_ERROR', 'block'], ['REDIS_REQUIRED', 'maybe']]) {
    t.throws(() => loadConfig({ env: { [k!]: v! }, readFile: files({}) }), { name: 'ConfigError', key: k })
  }
})

t.test('a bad value stops start-up naming the key', async (t) => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ SERVER_MODE: 'maybe' }, 'SERVER_MODE'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ THINKING_OUTPUT: 'loud' }, 'THINKING_OUTPUT'],
    [{ QWEN_BASE_URL: 'ftp://x' }, 'QWEN_BASE_URL'],
    [{ MODEL_ALIASES: '{not json' }, 'MODEL_ALIASES'],
    [{ UPSTREAM_IDLE_TIMEOUT_MS: '0' }, 'UPSTREAM_IDLE_TIMEOUT_MS'],
    [{ API_KEY_FILE: 'missing.txt' }, 'API_KEY_FILE'],
    [{ REQUEST_TIMEOUT_MS: '3000000000' }, 'REQUEST_TIMEOUT_MS'],
    [{ TOKEN_REFRESH_INTERVAL_HOURS: '720' }, 'TOKEN_REFRESH_INTERVAL_HOURS'],
  ]
  for (const [env, key] of bad) {
    try {
      loadConfig({ env, readFile: files({}) })
      t.fail(`${key} should be refused`)
    } catch (err) {
      t.type(err, ConfigError)
      t.equal((err as ConfigError).key, key)
      t.match((err as Error).message, key)
    }
  }
  t.throws(() => loadConfig({ env: {}, readFile: files({ 'config.json': '{oops' }) }), ConfigError)
})

t.test('secrets from files, aliases, CORS origins', async (t) => {
  const c = loadConfig({
    env: { API_KEY_FILE: '/run/secrets/key', MODEL_ALIASES: '{"gpt-4o":"qwen3-max"}', CORS_ORIGINS: 'https://a.example, https://b.example' },
    readFile: files({ '/run/secrets/key': 'sk-from-file\n' }),
  })
  t.equal(c.options.apiKey, 'sk-from-file')
  t.same(c.options.modelAliases, { 'gpt-4o': 'qwen3-max' })
  t.same(c.options.corsOrigins, ['https://a.example', 'https://b.example'])
})

t.test('cookies: COOKIE when set, else COOKIE_FILE, else cookie.txt (not a union)', async (t) => {
  const txt = files({ 'cookie.txt': '# my accounts\ntoken=a; x=1\n\n  token=b; x=2  \n', 'mine.txt': 'token=f' })
  const fromEnv = loadConfig({ env: { COOKIE: 'token=e1|||token=e2' }, readFile: txt })
  t.same(fromEnv.options.cookies, ['token=e1', 'token=e2'])
  t.equal(fromEnv.cookieSource, 'COOKIE')
  const fromFile = loadConfig({ env: {}, readFile: txt })
  t.same(fromFile.options.cookies, ['token=a; x=1', 'token=b; x=2'])
  t.equal(fromFile.cookieSource, 'cookie.txt')
  const fromCookieFile = loadConfig({ env: { COOKIE_FILE: 'mine.txt' }, readFile: txt })
  t.same(fromCookieFile.options.cookies, ['token=f'])
})

t.test('cookie parsing corpus: separators and paste damage', async (t) => {
  t.same(parseCookies('a=1; b=2|||c=3\nd=4\\ne=5\r\n#f=6\n\n'), ['a=1; b=2', 'c=3', 'd=4', 'e=5'])
  t.equal(cleanCookie('  "token=abc; x=1"  '), 'token=abc; x=1')
  t.equal(cleanCookie("'token=abc'"), 'token=abc')
  t.equal(cleanCookie('Cookie: token=abc;x=1;'), 'token=abc; x=1')
  t.equal(cleanCookie('cookie:"token=abc"'), 'token=abc')
  t.equal(cleanCookie('token=abc ;  x=1'), 'token=abc; x=1')
})

t.test('resolveOptions clamps durations that become timers (setTimeout fires at once past 2^31-1 ms)', async (t) => {
  const r = resolveOptions({ requestTimeoutMs: 3e9, keepAliveIntervalMs: 1e12, tokenRefreshIntervalHours: 10_000 })
  t.equal(r.requestTimeoutMs, 2_147_483_647)
  t.equal(r.keepAliveIntervalMs, 2_147_483_647)
  t.ok(r.tokenRefreshIntervalHours * 3_600_000 <= 2_147_483_647)
})

t.test('resolveOptions ignores Fastify register keys and empty secrets', async (t) => {
  const r = resolveOptions({ apiKey: '', cookies: [' a ', ''], ...({ prefix: '/x' } as object) })
  t.equal(r.apiKey, undefined)
  t.same(r.cookies, ['a'])
  t.notOk('prefix' in r)
})

t.test('.env.example documents every key and is itself a valid configuration', async (t) => {
  const { readFileSync } = await import('node:fs')
  const { parseEnv } = await import('node:util')
  const { ConfigSchema } = await import('../src/config.js')
  const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8')
  for (const key of Object.keys(ConfigSchema.properties)) t.match(text, new RegExp(`^${key}=`, 'm'), `${key} is documented`)
  const c = loadConfig({ env: parseEnv(text), readFile: files({}) })
  t.same(c.options.modelAliases, { 'gpt-4o': 'qwen3-max', 'gpt-4o-mini': 'qwen3-coder-plus' })
  t.equal(c.server.port, 8000)
})

/** The README's configuration table: key → documented default (the first `code` span of the cell, if any). */
function readmeTable (readme: string): Map<string, string | undefined> {
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1))
  const rows = new Map<string, string | undefined>()
  for (const m of section.matchAll(/^\| `([A-Z0-9_]+)` \|([^|]*)\|/gm)) rows.set(m[1]!, /`([^`]*)`/.exec(m[2]!)?.[1])
  return rows
}

/** A schema default as the README writes it; an empty list is "no default". */
function documented (value: unknown): string | undefined {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return undefined
  return typeof value === 'object' ? JSON.stringify(value) : String(value)
}

t.test('the README configuration table has a row for every key, with the schema default', async (t) => {
  const { readFileSync } = await import('node:fs')
  const { ConfigSchema } = await import('../src/config.js')
  const rows = readmeTable(readFileSync(new URL('../README.md', import.meta.url), 'utf8'))
  const keys = Object.keys(ConfigSchema.properties)
  t.ok(keys.length >= 34, 'every option key and server key')
  for (const key of keys) {
    t.ok(rows.has(key), `${key} is in the table`)
    t.equal(rows.get(key), documented((ConfigSchema.properties[key] as { default?: unknown }).default), `${key}: documented default is the schema default`)
  }
  for (const key of rows.keys()) t.ok(keys.includes(key), `${key} in the table is a configuration key`)
})

t.test('the README table test notices a missing row and a wrong default', async (t) => {
  const rows = readmeTable('## Configuration\n\n| Key | Default | Meaning |\n|---|---|---|\n| `A` | `1` | x |\n| `B` | (empty) | y \\| z |\n\n## Next\n| `C` | `3` | z |\n')
  t.same([...rows], [['A', '1'], ['B', undefined]])
  t.equal(documented({}), '{}')
  t.equal(documented([]), undefined)
})

t.test('pasted cookies: quotes around a value with a trailing newline are one cookie (defect 17)', async (t) => {
  const cases = [
    '"token=abc; x=y"\n',
    '"token=abc; x=y"\\n',
    '\'"token=abc; x=y"\\n\'',
    '"token=abc; x=y\n"',
    '"token=abc; x=y\\n"',
    '"token=abc; x=y\r\n"\r\n',
    'Cookie: "token=abc; x=y\n"',
  ]
  for (const COOKIE of cases) t.same(loadConfig({ env: { COOKIE }, readFile: files({}) }).options.cookies, ['token=abc; x=y'], JSON.stringify(COOKIE))
  t.same(parseCookies('"token=a; b=1\n"|||"token=c\n"'), ['token=a; b=1', 'token=c'], 'several quoted entries')
  t.same(parseCookies('token=a; q="v"\ntoken=b'), ['token=a; q="v"', 'token=b'], 'a quoted cookie value is kept')
  t.same(loadConfig({ env: {}, readFile: files({ 'cookie.txt': '"token=f\n"\n' }) }).options.cookies, ['token=f'], 'the same in cookie.txt')
})

t.test('pasted cookies: non-ASCII values are percent-encoded as UTF-8 (defect 17)', async (t) => {
  const c = loadConfig({ env: { COOKIE: 'token=abc; lang=中文; n=café' }, readFile: files({}) })
  t.same(c.options.cookies, ['token=abc; lang=%E4%B8%AD%E6%96%87; n=caf%C3%A9'])
  t.equal(decodeURIComponent(c.options.cookies![0]!.split('lang=')[1]!.split(';')[0]!), '中文')
  t.doesNotThrow(() => new Headers({ cookie: c.options.cookies![0]! }), 'a valid header value')
  t.equal(cleanCookie(cleanCookie('lang=中文')), 'lang=%E4%B8%AD%E6%96%87', 'cleaning twice changes nothing')
})

t.test('pasted cookies: control characters stop start-up naming the entry, never printing it (defect 17)', async (t) => {
  const cases: Array<[ConfigSources, string, string]> = [
    [{ env: { COOKIE: 'token=a|||token=sec\u0000ret' }, readFile: files({}) }, 'COOKIE', 'cookie entry 2'],
    [{ env: { COOKIE: '\u0007token=secret' }, readFile: files({}) }, 'COOKIE', 'cookie entry 1'],
    [{ env: { COOKIE_FILE: 'c.txt' }, readFile: files({ 'c.txt': '# first\ntoken=a\ntoken=b\ntoken=sec\u001bret\n' }) }, 'COOKIE_FILE', 'cookie entry 3'],
    [{ env: {}, readFile: files({ 'cookie.txt': 'token=sec\u007fret' }) }, 'cookie.txt', 'cookie entry 1'],
  ]
  for (const [sources, key, entry] of cases) {
    try {
      loadConfig(sources)
      t.fail(`${key} should be refused`)
    } catch (err) {
      t.type(err, ConfigError)
      t.equal((err as ConfigError).key, key)
      t.match((err as Error).message, entry)
      t.match((err as Error).message, /control character/)
      t.notMatch((err as Error).message, /secret|token/, 'the cookie is not printed')
    }
  }
  t.same(loadConfig({ env: { COOKIE: 'token=a;\tx=1' }, readFile: files({}) }).options.cookies, ['token=a; x=1'], 'a tab is whitespace, not refused')
})

t.test('COOKIE in config.json is used like the env key (env wins)', async (t) => {
  const file = files({ 'config.json': JSON.stringify({ COOKIE: 'token=file' }), 'cookie.txt': 'token=txt' })
  const c = loadConfig({ env: {}, readFile: file })
  t.same(c.options.cookies, ['token=file'])
  t.equal(c.cookieSource, 'COOKIE')
  t.same(loadConfig({ env: { COOKIE: 'token=env' }, readFile: file }).options.cookies, ['token=env'])
  t.same(loadConfig({ env: { COOKIE: '  ' }, readFile: files({ 'cookie.txt': 'token=txt' }) }).options.cookies, ['token=txt'], 'a blank COOKIE is unset')
})

t.test('config.json token write-back keeps the file mode and exactly one backup (defect 3)', async (t) => {
  const { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { configTokenWriter } = await import('../src/server.js')
  for (const mode of [0o600, 0o640]) {
    const dir = mkdtempSync(join(tmpdir(), 'qg-cfg-'))
    const path = join(dir, 'config.json')
    writeFileSync(path, JSON.stringify({ API_KEY: 'k', QWEN_TOKEN: 'token-0' }))
    chmodSync(path, mode)
    writeFileSync(`${path}.backup.1700000000000`, '{"QWEN_TOKEN":"ancient"}')
    writeFileSync(`${path}.tmp`, 'stale', { mode: 0o644 })
    chmodSync(`${path}.tmp`, 0o644)
    const write = configTokenWriter(path)
    for (let i = 1; i <= 3; i++) await write({ identity: 'u-1', token: `token-${i}`, singleCookie: true })
    t.same(JSON.parse(readFileSync(path, 'utf8')), { API_KEY: 'k', QWEN_TOKEN: 'token-3' })
    t.equal(statSync(path).mode & 0o777, mode, `config.json keeps mode ${mode.toString(8)}`)
    t.same(readdirSync(dir).filter((f) => f.startsWith('config.json.')), ['config.json.backup'], 'one backup, no timestamped ones, no temp file')
    t.equal(JSON.parse(readFileSync(`${path}.backup`, 'utf8')).QWEN_TOKEN, 'token-2', 'the backup holds the previous version')
    t.equal(statSync(`${path}.backup`).mode & 0o777, mode, 'the backup has the same mode')
    t.notOk(existsSync(`${path}.tmp`))
  }
})
