import Fastify from 'fastify'
import tap from 'tap'
import { ENV_BINDINGS, loadConfig } from '../src/config.js'
import qwenGateway, { buildServer, OptionsError } from '../src/index.js'
import { DEFAULTS, GatewayOptionsSchema, MAX_TIMER_MS, resolveOptions, type GatewayOptions } from '../src/options.js'
import { DEFAULT_POLICY } from '../src/pool.js'
import { harness, postJson } from './helpers/setup.js'

/** The OptionsError `fn` throws (fails the test when it does not throw one). */
function optionsError (t: Pick<typeof tap, 'type' | 'fail'>, fn: () => unknown): OptionsError | undefined {
  try {
    fn()
  } catch (err) {
    t.type(err, OptionsError)
    return err as OptionsError
  }
  t.fail('expected an OptionsError')
  return undefined
}

const bad: Array<[string, Record<string, unknown>, string]> = [
  ['keep-alive every millisecond', { keepAliveIntervalMs: 0 }, 'keepAliveIntervalMs'],
  ['keep-alive under 100 ms', { keepAliveIntervalMs: 99 }, 'keepAliveIntervalMs'],
  ['an instant request timeout', { requestTimeoutMs: 0 }, 'requestTimeoutMs'],
  ['negative retries', { maxRetries: -1 }, 'maxRetries'],
  ['fractional retries', { maxRetries: 1.5 }, 'maxRetries'],
  ['NaN timeout', { upstreamIdleTimeoutMs: NaN }, 'upstreamIdleTimeoutMs'],
  ['non-http upstream', { qwenBaseUrl: 'ftp://chat.qwen.ai' }, 'qwenBaseUrl'],
  ['upstream without scheme', { qwenBaseUrl: 'chat.qwen.ai' }, 'qwenBaseUrl'],
  ['socks proxy', { proxyUrl: 'socks5://127.0.0.1:1080' }, 'proxyUrl'],
  ['string boolean', { serverMode: 'false' }, 'serverMode'],
  ['one cookie as a string', { cookies: 'token=abc' }, 'cookies'],
  ['a cookie that is not a string', { cookies: ['token=a', 42] }, 'cookies[1]'],
  ['unknown thinking output', { thinkingOutput: 'loud' }, 'thinkingOutput'],
  ['alias to a number', { modelAliases: { 'gpt-4o': 4 } }, 'modelAliases.gpt-4o'],
  ['CORS origins as a number', { corsOrigins: 5 }, 'corsOrigins'],
  ['zero breaker cooldown', { poolPolicy: { downCooldownMs: 0 } }, 'poolPolicy.downCooldownMs'],
  ['account without password', { accounts: [{ email: 'a@x.com' }] }, 'accounts[0].password'],
  ['tiny body limit', { bodyLimitBytes: 10 }, 'bodyLimitBytes'],
  ['zero start-up concurrency', { startupConcurrency: 0 }, 'startupConcurrency'],
  ['non-positive refresh interval', { tokenRefreshIntervalHours: 0 }, 'tokenRefreshIntervalHours'],
  ['a clock that is not a function', { now: 5 }, 'now'],
  ['a callback that is not a function', { onTokenRefreshed: 'write' }, 'onTokenRefreshed'],
  ['a dispatcher that is not an object', { dispatcher: 'agent' }, 'dispatcher'],
  ['a state file that is null', { stateFile: null }, 'stateFile'],
]

tap.test('resolveOptions refuses bad values with an OptionsError naming the option', async (t) => {
  for (const [what, opts, option] of bad) {
    const err = optionsError(t, () => resolveOptions(opts as GatewayOptions))
    t.equal(err?.option, option, what)
    t.match(err?.message, `Invalid option ${option}:`, what)
  }
  const zero = optionsError(t, () => resolveOptions({ keepAliveIntervalMs: 0 }))
  t.match(zero?.message, /greater or equal to 100 \(got 0\)/, 'says what is allowed and what it got')
})

tap.test('secrets are never echoed in option errors', async (t) => {
  for (const opts of [{ apiKey: 123456789 }, { stateSecret: 987654321 }, { qwenToken: 55555555 }, { cookies: 'token=supersecret' }]) {
    const err = optionsError(t, () => resolveOptions(opts as unknown as GatewayOptions))
    t.notMatch(err?.message, /123456789|987654321|55555555|supersecret/)
  }
})

tap.test('boundary values are accepted', async (t) => {
  const r = resolveOptions({ keepAliveIntervalMs: 100, maxRetries: 0, modelsCacheTtlMs: 0, tokenRefreshIntervalHours: 0.0002, stateDebounceMs: 0, corsOrigins: ['https://a.example'], poolPolicy: { downCooldownMs: 1 } })
  t.equal(r.keepAliveIntervalMs, 100)
  t.equal(r.maxRetries, 0)
  t.equal(r.modelsCacheTtlMs, 0)
  t.same(r.corsOrigins, ['https://a.example'])
  t.same(r.poolPolicy, { downCooldownMs: 1 })
  t.equal(resolveOptions({ requestTimeoutMs: Infinity }).requestTimeoutMs, MAX_TIMER_MS, 'an endless timeout is the longest timer')
})

tap.test('defaults come from the schema, and each resolution gets its own copies', async (t) => {
  t.same(DEFAULTS, {
    cookies: [],
    accounts: [],
    serverMode: true,
    debugMode: false,
    qwenBaseUrl: 'https://chat.qwen.ai',
    visionFallbackModel: 'qwen3-vl-plus',
    autoRefreshToken: true,
    tokenRefreshIntervalHours: 24,
    thinkingOutput: 'reasoning_content',
    upstreamConnectTimeoutMs: 10_000,
    upstreamFirstByteTimeoutMs: 60_000,
    upstreamIdleTimeoutMs: 120_000,
    requestTimeoutMs: 600_000,
    shutdownGraceMs: 20_000,
    maxEventLoopDelayMs: 0,
    maxHeapUsedBytes: 0,
    maxRssBytes: 0,
    upstreamMaxConnections: 1024,
    upstreamQueueTimeoutMs: 5_000,
    upstreamWebVersion: '0.2.81',
    upstreamBodyLimitBytes: 100_000,
    chatDeletion: 'after_use',
    chatDeletionIntervalMs: 3_600_000,
    chatDeletionMaxAgeMs: 86_400_000,
    chatDeletionMediaDelayMs: 3_600_000,
    chatDeletionRetryDelayMs: 2_000,
    chatDeletionFlushMs: 5_000,
    readyChatsPerIdentity: 2,
    readyChatMaxAgeMs: 600_000,
    keepAliveIntervalMs: 15_000,
    modelAliases: {},
    toolCallMarkers: { open: '[TOOL CALL]', close: '[END TOOL CALL]' },
    bodyLimitBytes: 32 * 1024 * 1024,
    uploadMaxBytes: 20 * 1024 * 1024,
    mediaFetchTimeoutMs: 15_000,
    mediaFetchAllow: [],
    corsOrigins: '*',
    modelsCacheTtlMs: 600_000,
    uploadCacheTtlMs: 240_000,
    conversationMode: 'upstream',
    conversationTtlMs: 3_600_000,
    conversationMaxEntries: 10_000,
    conversationMaxBytes: 8 * 1024 * 1024,
    videoTimeoutMs: 1_200_000,
    videoPollIntervalMs: 5_000,
    maxBufferBytes: 8 * 1024 * 1024,
    maxRetries: 2,
    startupConcurrency: 4,
    poolPolicy: {},
    redisNamespace: 'default',
    redisCommandTimeoutMs: 250,
    redisRequired: false,
    rateLimitOnStoreError: 'local',
    storeResyncMs: 5_000,
    stateDebounceMs: 1000,
    rateLimitRpm: 0,
    maxConcurrentStreamsPerKey: 0,
    keyLimits: {},
    metricsPublic: false,
    adminUi: true,
    adminRateLimitRpm: 120,
  })
  t.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.cookies), 'DEFAULTS cannot be changed')
  const a = resolveOptions({})
  t.equal(a.now, Date.now)
  a.cookies.push('token=x')
  a.modelAliases.x = 'y'
  const b = resolveOptions({})
  t.same(b.cookies, [])
  t.same(b.modelAliases, {})
  for (const [key, prop] of Object.entries(GatewayOptionsSchema.properties)) {
    if ('default' in prop) t.same((b as unknown as Record<string, unknown>)[key], prop.default, `${key} defaults to the schema default`)
  }
})

tap.test("the breaker defaults documented in the schema are the pool's", async (t) => {
  const props = (GatewayOptionsSchema.properties.poolPolicy as unknown as { properties: Record<string, { default?: number }> }).properties
  t.same(Object.fromEntries(Object.entries(props).map(([k, p]) => [k, p.default])), DEFAULT_POLICY)
})

tap.test('every option with an env key is read from that key (the mapping is derived from the schema)', async (t) => {
  const keys = ENV_BINDINGS.map((b) => b.key)
  t.equal(new Set(keys).size, keys.length, 'env keys are unique')
  t.ok(keys.includes('KEEPALIVE_INTERVAL_MS') && keys.includes('BREAKER_DOWN_COOLDOWN_MS'))
  const sample: Record<string, [string, unknown]> = {
    API_KEY: ['sk-x', 'sk-x'],
    ADMIN_API_KEY: ['sk-admin', 'sk-admin'],
    KEY_LIMITS: ['{"anonymous":{"rpm":5}}', { anonymous: { rpm: 5 } }],
    METRICS_PUBLIC: ['yes', true],
    ADMIN_UI: ['false', false],
    COOKIE: ['token=a|||token=b', ['token=a', 'token=b']],
    ACCOUNTS: ['a@x.com:pw', [{ email: 'a@x.com', password: 'pw' }]],
    QWEN_TOKEN: ['tok', 'tok'],
    PROXY_URL: ['http://127.0.0.1:3128', 'http://127.0.0.1:3128'],
    STATE_SECRET: ['s3cret', 's3cret'],
    REPLICA_ID: ['gw-a', 'gw-a'],
    REDIS_URL: ['redis://127.0.0.1:6390', 'redis://127.0.0.1:6390'],
    REDIS_NAMESPACE: ['blue', 'blue'],
    REDIS_COMMAND_TIMEOUT_MS: ['1000', 1000],
    REDIS_REQUIRED: ['true', true],
    RATE_LIMIT_ON_STORE_ERROR: ['deny', 'deny'],
    CORS_ORIGINS: ['https://a.example,https://b.example', ['https://a.example', 'https://b.example']],
    MODEL_ALIASES: ['{"a":"qwen3-max"}', { a: 'qwen3-max' }],
    TOOL_CALL_MARKERS: ['{"open":"<<C>>","close":"<</C>>"}', { open: '<<C>>', close: '<</C>>' }],
    SERVER_MODE: ['no', false],
    DEBUG_MODE: ['1', true],
    AUTO_REFRESH_TOKEN: ['false', false],
    THINKING_OUTPUT: ['hidden', 'hidden'],
    QWEN_BASE_URL: ['http://127.0.0.1:9', 'http://127.0.0.1:9'],
    VISION_FALLBACK_MODEL: ['qwen3-vl-max', 'qwen3-vl-max'],
    TOKEN_REFRESH_INTERVAL_HOURS: ['6', 6],
    UPSTREAM_WEB_VERSION: ['0.2.99', '0.2.99'],
    CONVERSATION_MODE: ['fold', 'fold'],
    CHAT_DELETION: ['scheduled', 'scheduled'],
  }
  for (const b of ENV_BINDINGS) {
    const [text, want] = sample[b.key] ?? [String(Number(b.schema.default) + 1000), Number(b.schema.default) + 1000]
    const c = loadConfig({ env: { [b.key]: text }, readFile: () => undefined })
    let got: unknown = c.options
    for (const p of b.path) got = (got as Record<string, unknown>)[p]
    t.same(got, want, `${b.key} sets ${b.path.join('.')}`)
    resolveOptions(c.options)
  }
})

tap.test('registration refuses bad options: buildServer rejects naming the option (defect 6)', async (t) => {
  for (const [opts, option] of [[{ keepAliveIntervalMs: 0 }, 'keepAliveIntervalMs'], [{ requestTimeoutMs: 0 }, 'requestTimeoutMs'], [{ maxRetries: -1 }, 'maxRetries']] as const) {
    await t.rejects(buildServer(opts, { logger: false }), { name: 'OptionsError', option, message: new RegExp(`Invalid option ${option}`) })
  }
})

tap.test('an embedding host that registers bad options fails at ready()', async (t) => {
  const host = Fastify({ logger: false })
  t.teardown(() => host.close())
  host.register(qwenGateway, { prefix: '/qwen', maxRetries: -1 })
  await t.rejects(async () => { await host.ready() }, { name: 'OptionsError', option: 'maxRetries' })
})

tap.test('cookies given as an option are cleaned like COOKIE', async (t) => {
  const r = resolveOptions({ cookies: ['"token=abc; x=y"\n', '  ', '"token=def; lang=中文\n"', "'Cookie: token=g'"] })
  t.same(r.cookies, ['token=abc; x=y', 'token=def; lang=%E4%B8%AD%E6%96%87', 'token=g'])
  for (const c of r.cookies) t.doesNotThrow(() => new Headers({ cookie: c }), 'a valid header value')
  t.throws(() => new Headers({ cookie: 'lang=中文' }), 'the raw value is not (what undici refuses)')
  const err = optionsError(t, () => resolveOptions({ cookies: ['token=ok', 'token=se\u0000cret'] }))
  t.equal(err?.option, 'cookies[1]')
  t.match(err?.message, /control character \(U\+0000\)/)
  t.notMatch(err?.message, /secret|token/, 'the cookie is never printed')
  t.equal(optionsError(t, () => resolveOptions({ cookies: ['a=1\nb=2'] }))?.option, 'cookies[0]', 'a newline inside one cookie is refused, not split')
  t.same(resolveOptions({ cookies: ['a=1;\tb=2'] }).cookies, ['a=1; b=2'], 'tabs are whitespace')
})

tap.test('a non-ASCII or quoted-with-newline cookie serves completions end to end (defect 17)', async (t) => {
  const { sim } = await harness(t, { gateway: { cookies: [] } })
  const { url } = await harness(t, { simulator: sim, gateway: { cookies: [`"${sim.accounts[0]!.cookie}; lang=中文\n"`] } })
  const res = await postJson(`${url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
  t.equal(res.status, 200)
  t.ok(((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content.length > 0)
  const health = await (await fetch(`${url}/health`)).json() as { identityPool: { total: number; healthy: number } }
  t.same([health.identityPool.total, health.identityPool.healthy], [1, 1], 'one healthy identity, not two broken ones')
})
