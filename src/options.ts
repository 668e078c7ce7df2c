/**
 * The plugin's options (camelCase): one TypeBox schema is the source of their type, their defaults,
 * their validation at registration, and (through the `env` metadata) the environment / config.json
 * keys the standalone server reads them from (`src/config.ts`). The README's configuration table is
 * kept in step with it by a test. Adding an option means one entry here and one README row.
 *
 * The plugin never reads env or files: the entry points (`src/server.ts`, `src/demo.ts`) build the
 * options from configuration.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { Dispatcher } from 'undici'
import { splitProxy } from './entries.js'
import type { PoolPolicy } from './health.js'

export { splitProxy }
import type { StateFile } from './state.js'
import { clip } from './errors.js'
import { ANONYMOUS_KEY_NAME, KEY_NAME, KeyListError, KeyRing } from './keys.js'
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_WEB_VERSION } from './upstream/protocol.js'

/** The longest delay a Node timer honours (2^31-1 ms); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647

/** Keywords the options schema carries besides JSON Schema's. */
export interface OptionMeta {
  /** The environment (and config.json) key the standalone server reads this option from. */
  env?: string
  /**
   * How that key's text becomes the value when the type alone does not say: `cookies` (a cookie
   * list, see `parseCookies`), `accounts` (`email:password` entries), `origins` (`*` or a
   * comma-separated list). Plain strings, numbers, booleans and JSON objects need none.
   */
  envFormat?: 'cookies' | 'accounts' | 'origins'
  /** Embedders' values above `maximum` are lowered to it (durations that become timers); the env key refuses them. */
  clamp?: boolean
  /** Never echo the value in an error message. */
  secret?: boolean
  /** Unchecked by the schema (functions, objects with methods); only `typeof` is checked. */
  runtime?: 'function' | 'object'
}
export type OptionSchema = TSchema & OptionMeta

/** A plugin option has a wrong type or value; `option` names it (`keepAliveIntervalMs`, `cookies[1]`, …). */
export class OptionsError extends Error {
  constructor (readonly option: string, message: string) {
    super(`Invalid option ${option}: ${message}`)
    this.name = 'OptionsError'
  }
}

/** What `onTokenRefreshed` is told. */
export interface TokenRefreshedEvent {
  identity: string
  token: string
  /** The deployment has exactly one identity, from a cookie (the original's single-cookie mode). */
  singleCookie: boolean
}

const HTTP_URL = '^https?://\\S+$'
/** Durations that become Node timers: setTimeout fires at once beyond 2^31-1 ms (~24.8 days). */
const Ms = (minimum: number, meta: OptionMeta & { default?: number; description?: string }) =>
  Type.Integer({ minimum, maximum: MAX_TIMER_MS, clamp: true, ...meta })
/** Options the schema cannot describe (functions, objects with methods): listed, typed, unchecked. */
const Opaque = <T>(runtime: 'function' | 'object', description: string) =>
  Type.Unsafe<T>(Type.Any({ runtime, description }))

export const AccountSchema = Type.Object({
  email: Type.String({ minLength: 1 }),
  password: Type.String({ minLength: 1 }),
  proxyUrl: Type.Optional(Type.String({ pattern: HTTP_URL })),
})
/** A sign-in account (e-mail and password), optionally with its own proxy. */
export type AccountOption = Static<typeof AccountSchema>

/**
 * Circuit-breaker thresholds and cooldowns. The defaults are the pool's own (`DEFAULT_POLICY` in
 * `src/pool.ts`, kept equal by a test); they are documentation here, not filled in.
 */
const PoolPolicySchema = Type.Object({
  degradeAfter: Type.Optional(Type.Integer({ minimum: 1, default: 3, description: 'Breaker failures until degraded' })),
  downAfter: Type.Optional(Type.Integer({ minimum: 1, default: 5, description: 'Breaker failures until down' })),
  degradedCooldownMs: Type.Optional(Type.Integer({ minimum: 1, default: 120_000, env: 'BREAKER_DEGRADED_COOLDOWN_MS', description: 'Cooldown of a degraded identity' })),
  downCooldownMs: Type.Optional(Type.Integer({ minimum: 1, default: 300_000, env: 'BREAKER_DOWN_COOLDOWN_MS', description: 'Cooldown of a down identity' })),
  maxCooldownMs: Type.Optional(Type.Integer({ minimum: 1, default: 3_600_000, env: 'BREAKER_MAX_COOLDOWN_MS', description: 'Cap for cooldowns that double after failed trials' })),
  rateLimitBackoffMs: Type.Optional(Type.Integer({ minimum: 1, default: 60_000, description: 'First rate-limit cooldown when the upstream names no time' })),
  challengeCooldownMs: Type.Optional(Type.Integer({ minimum: 1, default: 600_000, description: 'First anti-bot cooldown' })),
})

export const GatewayOptionsSchema = Type.Object({
  apiKey: Type.Optional(Type.String({
    env: 'API_KEY', secret: true, pattern: '^[^\\x00-\\x1f\\x7f]*$',
    description: 'Gateway access keys, `|||`-separated, each optionally named (`alice:sk-…|||bob:sk-…`; an unnamed key is named `key-` and a short hash). Empty or unset means open. Control characters (CR, LF, NUL) are refused: no client could send them in a header.',
  })),
  adminApiKey: Type.Optional(Type.String({
    env: 'ADMIN_API_KEY', secret: true, pattern: '^[^\\x00-\\x1f\\x7f]*$',
    description: 'The admin key (opens `/refresh-token`, the per-identity detail of `/health`, `/metrics`); also accepted on the API routes. Default: the first `apiKey` entry.',
  })),
  rateLimitRpm: Type.Optional(Type.Integer({ env: 'RATE_LIMIT_RPM', minimum: 0, default: 0, description: 'Completion requests per minute per key (0: no limit).' })),
  maxConcurrentStreamsPerKey: Type.Optional(Type.Integer({
    env: 'MAX_CONCURRENT_STREAMS_PER_KEY', minimum: 0, default: 0, description: 'Completion requests in progress per key, streamed or not (0: no limit).',
  })),
  keyLimits: Type.Optional(Type.Record(Type.String({ pattern: KEY_NAME.source }), Type.Object({
    rpm: Type.Optional(Type.Integer({ minimum: 0 })),
    streams: Type.Optional(Type.Integer({ minimum: 0 })),
  }, { additionalProperties: false }), {
    env: 'KEY_LIMITS', default: {}, description: 'Limits per key name, over the defaults: `{"alice": {"rpm": 60, "streams": 4}}` (0: no limit for that key).',
  })),
  adminUi: Type.Optional(Type.Boolean({ env: 'ADMIN_UI', default: true, description: 'The operator dashboard at `/admin/` and its JSON API `/admin/api/*` (admin key; loopback only without one). `false` turns both off.' })),
  adminRateLimitRpm: Type.Optional(Type.Integer({ env: 'ADMIN_RATE_LIMIT_RPM', minimum: 1, default: 120, description: 'Requests per minute to `/admin/api/*` per client socket address (not `X-Forwarded-For`), wrong keys included.' })),
  metricsPublic: Type.Optional(Type.Boolean({ env: 'METRICS_PUBLIC', default: false, description: '`GET /metrics` without the admin key.' })),
  cookies: Type.Optional(Type.Array(Type.String(), {
    env: 'COOKIE', envFormat: 'cookies', secret: true, default: [],
    description: 'Browser cookies, one per upstream account; an entry may end in `@proxy=http://host:port`. Cleaned like COOKIE (quotes, `Cookie:`, non-ASCII percent-encoded); control characters are refused.',
  })),
  accounts: Type.Optional(Type.Array(AccountSchema, { env: 'ACCOUNTS', envFormat: 'accounts', secret: true, default: [], description: 'Accounts that sign in with e-mail and password.' })),
  qwenToken: Type.Optional(Type.String({ env: 'QWEN_TOKEN', secret: true, description: 'A token for the single configured cookie, or a token-only identity when there is no cookie.' })),
  serverMode: Type.Optional(Type.Boolean({ env: 'SERVER_MODE', default: true, description: "`true`: the gateway's own identities serve every request. `false`: callers bring theirs." })),
  debugMode: Type.Optional(Type.Boolean({ env: 'DEBUG_MODE', default: false })),
  qwenBaseUrl: Type.Optional(Type.String({ env: 'QWEN_BASE_URL', pattern: HTTP_URL, default: 'https://chat.qwen.ai', description: 'The upstream; the only switch between chat.qwen.ai and the simulator.' })),
  visionFallbackModel: Type.Optional(Type.String({ env: 'VISION_FALLBACK_MODEL', default: 'qwen3-vl-plus' })),
  autoRefreshToken: Type.Optional(Type.Boolean({ env: 'AUTO_REFRESH_TOKEN', default: true })),
  tokenRefreshIntervalHours: Type.Optional(Type.Number({
    env: 'TOKEN_REFRESH_INTERVAL_HOURS', exclusiveMinimum: 0, maximum: Math.floor(MAX_TIMER_MS / 3_600_000), clamp: true, default: 24,
  })),
  thinkingOutput: Type.Optional(Type.Union([Type.Literal('reasoning_content'), Type.Literal('think_tags'), Type.Literal('hidden')], {
    env: 'THINKING_OUTPUT', default: 'reasoning_content',
  })),
  upstreamConnectTimeoutMs: Type.Optional(Ms(1, { env: 'UPSTREAM_CONNECT_TIMEOUT_MS', default: 10_000 })),
  upstreamFirstByteTimeoutMs: Type.Optional(Ms(1, { env: 'UPSTREAM_FIRST_BYTE_TIMEOUT_MS', default: 60_000 })),
  upstreamIdleTimeoutMs: Type.Optional(Ms(1, { env: 'UPSTREAM_IDLE_TIMEOUT_MS', default: 120_000, description: 'Longest silence between upstream frames.' })),
  requestTimeoutMs: Type.Optional(Ms(1, { env: 'REQUEST_TIMEOUT_MS', default: 600_000, description: 'Whole-request budget for one completion.' })),
  shutdownGraceMs: Type.Optional(Ms(0, { env: 'SHUTDOWN_GRACE_MS', default: 20_000, description: 'On close (SIGTERM), how long requests in progress may finish before they are ended with an error.' })),
  maxEventLoopDelayMs: Type.Optional(Type.Integer({ env: 'MAX_EVENT_LOOP_DELAY_MS', minimum: 0, default: 0, description: 'Shed load (503 `server_overloaded`) while the event loop delay is above this (0: off).' })),
  maxHeapUsedBytes: Type.Optional(Type.Integer({ env: 'MAX_HEAP_USED_BYTES', minimum: 0, default: 0, description: 'Shed load while the V8 heap is above this (0: off).' })),
  maxRssBytes: Type.Optional(Type.Integer({ env: 'MAX_RSS_BYTES', minimum: 0, default: 0, description: 'Shed load while the resident memory is above this (0: off).' })),
  upstreamMaxConnections: Type.Optional(Type.Integer({ env: 'UPSTREAM_MAX_CONNECTIONS', minimum: 1, default: 1024, description: 'Concurrent upstream requests (connections per origin).' })),
  upstreamQueueTimeoutMs: Type.Optional(Ms(0, { env: 'UPSTREAM_QUEUE_TIMEOUT_MS', default: 5_000, description: 'Longest wait for a free upstream connection before 503 `gateway_overloaded`.' })),
  keepAliveIntervalMs: Type.Optional(Ms(100, { env: 'KEEPALIVE_INTERVAL_MS', default: 15_000, description: 'SSE comment sent after this much silence towards the client, once the stream is committed.' })),
  upstreamWebVersion: Type.Optional(Type.String({
    env: 'UPSTREAM_WEB_VERSION', minLength: 1, pattern: '^[\\x21-\\x7e]+$', default: DEFAULT_WEB_VERSION,
    description: 'The `version` header: the chat.qwen.ai web app version the gateway presents itself as.',
  })),
  upstreamBodyLimitBytes: Type.Optional(Type.Integer({
    env: 'UPSTREAM_BODY_LIMIT_BYTES', minimum: 1024, default: DEFAULT_BODY_LIMIT_BYTES,
    description: 'Largest upstream completion body (the upstream answers bodies above ~120 KB with a captcha); above it the folded history goes as an uploaded text file, and when that cannot be done the request gets 400 `context_length_exceeded`.',
  })),
  chatDeletion: Type.Optional(Type.Union([Type.Literal('off'), Type.Literal('after_use'), Type.Literal('scheduled')], {
    env: 'CHAT_DELETION', default: 'after_use',
    description: 'Deleting the upstream chats the gateway creates: `after_use` (once no conversation can continue them), `scheduled` (a periodic sweep of old chats), `off`.',
  })),
  chatDeletionIntervalMs: Type.Optional(Ms(1000, { env: 'CHAT_DELETION_INTERVAL_MS', default: 3_600_000, description: '`scheduled`: time between two sweeps of every account\'s chats.' })),
  chatDeletionMaxAgeMs: Type.Optional(Type.Integer({ env: 'CHAT_DELETION_MAX_AGE_MS', minimum: 0, default: 86_400_000, description: '`scheduled`: chats older than this are deleted by the sweep.' })),
  chatDeletionMediaDelayMs: Type.Optional(Ms(0, { env: 'CHAT_DELETION_MEDIA_DELAY_MS', default: 3_600_000, description: '`after_use`: a chat whose media the client got as upstream URLs is deleted this long after the response, so the links keep working.' })),
  chatDeletionRetryDelayMs: Type.Optional(Ms(0, { default: 2_000, description: 'First delay before a failed chat deletion is tried again (it doubles; three tries in all).' })),
  chatDeletionFlushMs: Type.Optional(Ms(0, { default: 5_000, description: 'On close, how long pending chat deletions may still run.' })),
  readyChatsPerIdentity: Type.Optional(Type.Integer({
    env: 'READY_CHATS_PER_IDENTITY', minimum: 0, default: 2,
    description: 'Upstream chats each usable account keeps created ahead, per model and chat type in recent demand, so a new conversation starts its completion at once (0: off).',
  })),
  readyChatMaxAgeMs: Type.Optional(Ms(1000, { env: 'READY_CHAT_MAX_AGE_MS', default: 600_000, description: 'A ready chat older than this is deleted instead of handed out.' })),
  proxyUrl: Type.Optional(Type.String({ env: 'PROXY_URL', pattern: HTTP_URL, description: 'Send all upstream traffic through this HTTP(S) proxy.' })),
  toolCallMarkers: Type.Optional(Type.Object({
    open: Type.String({ minLength: 1, maxLength: 64 }),
    close: Type.String({ minLength: 1, maxLength: 64 }),
  }, {
    env: 'TOOL_CALL_MARKERS', default: { open: '[TOOL CALL]', close: '[END TOOL CALL]' },
    description: 'The markers the model is told to write around each emulated tool call (JSON `{"open", "close"}`).',
  })),
  modelAliases: Type.Optional(Type.Record(Type.String(), Type.String(), {
    env: 'MODEL_ALIASES', default: {}, description: 'Client-facing model names mapped onto upstream models, e.g. `{"gpt-4o": "qwen3-max"}`.',
  })),
  bodyLimitBytes: Type.Optional(Type.Integer({ env: 'BODY_LIMIT_BYTES', minimum: 1024, default: 32 * 1024 * 1024, description: 'Largest request body (32 MiB: a 20 MiB file fits as base64).' })),
  uploadMaxBytes: Type.Optional(Type.Integer({ env: 'UPLOAD_MAX_BYTES', minimum: 1, default: 20 * 1024 * 1024, description: 'Largest media file (image, audio, video, document) in a request, decoded or fetched.' })),
  mediaFetchTimeoutMs: Type.Optional(Ms(1, { env: 'MEDIA_FETCH_TIMEOUT_MS', default: 15_000, description: 'Budget for fetching one media URL, redirects and body included.' })),
  mediaFetchAllow: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], {
    env: 'MEDIA_FETCH_ALLOW', default: [],
    description: 'Host names (`*.example.com` for subdomains), addresses or CIDRs that media URLs may be fetched from although they are private (comma-separated).',
  })),
  corsOrigins: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], {
    env: 'CORS_ORIGINS', envFormat: 'origins', default: '*', description: 'Allowed CORS origins; `*` by default.',
  })),
  modelsCacheTtlMs: Type.Optional(Type.Integer({ env: 'MODELS_CACHE_TTL_MS', minimum: 0, default: 10 * 60_000 })),
  uploadCacheTtlMs: Type.Optional(Ms(0, {
    env: 'UPLOAD_CACHE_TTL_MS', default: 240_000,
    description: 'How long an uploaded file is reused for identical bytes sent by the same account (0 disables); keep it below the upstream URL validity (~300 s).',
  })),
  conversationMode: Type.Optional(Type.Union([Type.Literal('upstream'), Type.Literal('fold')], {
    env: 'CONVERSATION_MODE', default: 'upstream',
    description: '`upstream`: a follow-up request continues the upstream chat of the previous answer (only the new turn is sent). `fold`: every request folds the whole history into a new chat.',
  })),
  conversationTtlMs: Type.Optional(Ms(1, { env: 'CONVERSATION_TTL_MS', default: 3_600_000, description: 'How long a conversation can be continued in its upstream chat after its last answer.' })),
  conversationMaxEntries: Type.Optional(Type.Integer({ env: 'CONVERSATION_MAX_ENTRIES', minimum: 1, default: 10_000, description: 'Conversations remembered at most (the oldest are evicted).' })),
  conversationMaxBytes: Type.Optional(Type.Integer({ env: 'CONVERSATION_MAX_BYTES', minimum: 1024, default: 8 * 1024 * 1024, description: 'Memory the remembered conversations may take, estimated (the oldest are evicted).' })),
  videoTimeoutMs: Type.Optional(Ms(1, { env: 'VIDEO_TIMEOUT_MS', default: 20 * 60_000, description: 'Whole-request budget of a video generation (replaces REQUEST_TIMEOUT_MS for `-video` models and video jobs).' })),
  videoPollIntervalMs: Type.Optional(Ms(10, { default: 5_000, description: 'First wait between video task status checks; it grows by half each time, up to 20 s.' })),
  maxBufferBytes: Type.Optional(Type.Integer({ minimum: 1, default: 8 * 1024 * 1024, description: 'Cap on buffered upstream bytes (one SSE line, one JSON body, one aggregated answer).' })),
  maxRetries: Type.Optional(Type.Integer({ env: 'MAX_RETRIES', minimum: 0, default: 2, description: 'Retries on other identities before the first byte reaches the client.' })),
  startupConcurrency: Type.Optional(Type.Integer({ minimum: 1, default: 4, description: 'Parallel token fetches at start-up.' })),
  poolPolicy: Type.Optional(Type.Unsafe<Partial<PoolPolicy>>({ ...PoolPolicySchema, default: {} })),
  stateFile: Type.Optional(Opaque<StateFile>('object', 'Where pool state is saved across restarts (the plugin itself never touches files); `{load, save}`.')),
  stateSecret: Type.Optional(Type.String({ env: 'STATE_SECRET', secret: true, description: 'Key for sealing tokens in the saved state; without it tokens are not saved.' })),
  replicaId: Type.Optional(Type.String({ env: 'REPLICA_ID', minLength: 1, description: 'Name of this replica in `/ready`, `/metrics` and the dashboard; the standalone server defaults it to the host name and process id.' })),
  redisUrl: Type.Optional(Type.String({ env: 'REDIS_URL', pattern: '^rediss?://', secret: true, description: 'Shared state for several replicas: `redis://` or `rediss://` URL of a Redis or Valkey server (the standalone server also reads `REDIS_URI`, `REDIS_CONNECTION_STRING`, then `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`). Requires `STATE_SECRET`.' })),
  redisNamespace: Type.Optional(Type.String({ env: 'REDIS_NAMESPACE', minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', default: 'default', description: 'Key namespace (`qg:{<ns>}:…`), so several deployments can share one Redis.' })),
  redis: Type.Optional(Opaque<object>('object', 'An ioredis client of the embedding app to keep shared state in (never closed by the plugin); instead of `redisUrl`.')),
  redisCommandTimeoutMs: Type.Optional(Ms(10, { env: 'REDIS_COMMAND_TIMEOUT_MS', default: 250, description: 'A Redis command that takes longer fails and the gateway serves from local state until Redis answers again (raise it for a distant or busy Redis).' })),
  redisRequired: Type.Optional(Type.Boolean({
    env: 'REDIS_REQUIRED', default: false,
    description: 'With Redis configured: refuse to start (the server exits with code 1) when Redis does not answer within 5 s, instead of starting on local state (`degraded-local`) and sharing once it answers.',
  })),
  rateLimitOnStoreError: Type.Optional(Type.Union([Type.Literal('local'), Type.Literal('allow'), Type.Literal('deny')], {
    env: 'RATE_LIMIT_ON_STORE_ERROR', default: 'local',
    description: 'Per-key requests per minute while Redis is unreachable: `local` (each replica counts for itself), `allow` (not limited), `deny` (refused: 429 `rate_limit_store_unavailable`).',
  })),
  storeResyncMs: Type.Optional(Ms(50, { default: 5_000, description: 'With Redis: how often a replica re-reads the shared pool state and checks that Redis is back.' })),
  stateDebounceMs: Type.Optional(Ms(0, { default: 1000, description: 'Debounce for state saves.' })),
  onTokenRefreshed: Type.Optional(Opaque<(event: TokenRefreshedEvent) => void | Promise<void>>('function', "Called after an identity's token was refreshed (the standalone server writes config.json).")),
  dispatcher: Type.Optional(Opaque<Dispatcher>('object', "An undici dispatcher to use instead of the plugin's own Agent (it is not closed by the plugin).")),
  now: Type.Optional(Opaque<() => number>('function', 'Clock for tokens, cooldowns and caches (tests); `Date.now` by default.')),
})

export type GatewayOptions = Static<typeof GatewayOptionsSchema>

type OptionalKeys = 'apiKey' | 'adminApiKey' | 'qwenToken' | 'proxyUrl' | 'dispatcher' | 'stateFile' | 'stateSecret' | 'replicaId' | 'onTokenRefreshed' | 'redisUrl' | 'redis'
export type ResolvedOptions = Required<Omit<GatewayOptions, OptionalKeys>> & Pick<GatewayOptions, OptionalKeys>

type OptionKey = keyof GatewayOptions
const PROPERTIES = GatewayOptionsSchema.properties as unknown as Record<OptionKey, OptionSchema & { default?: unknown }>
/** Every option key: register() options also carry Fastify's own keys (prefix, …), which are not ours. */
const OPTION_KEYS = Object.freeze(Object.keys(PROPERTIES) as OptionKey[])

function deepFreeze<T> (v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x)
    Object.freeze(v)
  }
  return v
}

/** The schema's defaults, one per option that has one (frozen: `resolveOptions` hands out copies). */
export const DEFAULTS = deepFreeze(Object.fromEntries(
  OPTION_KEYS.filter((k) => PROPERTIES[k].default !== undefined).map((k) => [k, structuredClone(PROPERTIES[k].default)]),
)) as Readonly<Omit<ResolvedOptions, OptionalKeys | 'now'>>

/** `/a/b/0` → `a.b[0]`. */
function optionPath (key: string, pointer: string): string {
  let out = key
  for (const part of pointer.split('/').filter(Boolean)) out += /^\d+$/.test(part) ? `[${part}]` : `.${part}`
  return out
}

/** The first schema error for `value`, as a message; `undefined` when it is valid. */
export function schemaProblem (schema: OptionSchema, value: unknown): { path: string; message: string } | undefined {
  if (schema.runtime) {
    return typeof value === schema.runtime && value !== null ? undefined : { path: '', message: `expected a ${schema.runtime}` }
  }
  if (Value.Check(schema, value)) return undefined
  const first = Value.Errors(schema, value).First()
  return { path: first?.path ?? '', message: first?.message ?? 'invalid value' }
}

/** A short, safe rendering of a refused value for error messages. */
export function preview (value: unknown): string {
  let s: string
  try {
    s = JSON.stringify(value) ?? String(value)
  } catch {
    s = String(value)
  }
  return clip(s, 80)
}

/**
 * Validate the options, fill in the defaults, clean the cookies. Throws `OptionsError` naming the
 * first bad option; keys that are not options (Fastify's `prefix`, …) are ignored.
 */
export function resolveOptions (o: GatewayOptions): ResolvedOptions {
  const given: Record<string, unknown> = {}
  for (const k of OPTION_KEYS) {
    let v: unknown = o[k]
    if (v === undefined) continue
    const schema = PROPERTIES[k]
    if (v === '' && schema.secret) continue
    if (schema.clamp && typeof v === 'number' && typeof schema.maximum === 'number' && v > schema.maximum) v = schema.maximum
    const problem = schemaProblem(schema, v)
    if (problem) throw new OptionsError(optionPath(k, problem.path), schema.secret ? problem.message : `${problem.message} (got ${preview(v)})`)
    given[k] = v
  }
  if (given.cookies) given.cookies = cleanCookieOption(given.cookies as string[])
  const r = { ...structuredClone(DEFAULTS), now: Date.now, ...given } as ResolvedOptions
  r.qwenBaseUrl = r.qwenBaseUrl.replace(/\/+$/, '')
  checkKeys(r)
  return r
}

/** The key list parses, and every `keyLimits` entry names a configured key. */
function checkKeys (r: ResolvedOptions): void {
  let ring: KeyRing
  try {
    ring = new KeyRing(r.apiKey, r.adminApiKey)
  } catch (err) {
    // KeyRing throws nothing but KeyListError (whose message never holds a key).
    const e = err as KeyListError
    throw new OptionsError(e.source, e.message)
  }
  const names = new Set(ring.names)
  // On an open gateway every caller is `anonymous` (counted per address).
  if (!ring.enabled) names.add(ANONYMOUS_KEY_NAME)
  for (const name of Object.keys(r.keyLimits)) {
    if (!names.has(name)) throw new OptionsError(`keyLimits.${name}`, `no API key is named ${name} (names: ${[...names].join(', ') || 'none'})`)
  }
}

function cleanCookieOption (cookies: string[]): string[] {
  const out: string[] = []
  cookies.forEach((raw, i) => {
    const c = cleanCookie(raw)
    const problem = cookieProblem(c)
    if (problem) throw new OptionsError(`cookies[${i}]`, problem)
    if (c) out.push(c)
  })
  return out
}

const QUOTES = ['"', "'"]
const count = (s: string, ch: string): number => s.split(ch).length - 1

/**
 * Remove paste damage around a cookie: surrounding quotes (also an unpaired one left over when a
 * newline inside the quotes split the value), a leading `Cookie:`, whitespace.
 */
function unwrap (raw: string): string {
  let c = raw.trim()
  for (let i = 0; i < 3; i++) {
    for (const q of QUOTES) {
      if (c.length >= 2 && c.startsWith(q) && c.endsWith(q)) c = c.slice(1, -1).trim()
      else if (c.startsWith(q) && count(c, q) % 2 === 1) c = c.slice(1).trim()
      else if (c.endsWith(q) && count(c, q) % 2 === 1) c = c.slice(0, -1).trim()
    }
    c = c.replace(/^cookie\s*:\s*/i, '')
  }
  return c
}

/** Percent-encode (as UTF-8) every non-ASCII run: a header value must be ASCII for the upstream. */
function encodeNonAscii (s: string): string {
  return s.replace(/[^\x00-\x7f]+/g, (run) => Array.from(Buffer.from(run, 'utf8'), (b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''))
}

/**
 * Clean one pasted cookie: quotes (paired or left over), a leading `Cookie:`, stray whitespace
 * around `;`, a trailing `;`; non-ASCII characters percent-encoded as UTF-8. An `@proxy=` suffix is
 * kept. Idempotent. Control characters are left for `cookieProblem` to refuse.
 */
export function cleanCookie (raw: string): string {
  const { value, proxyUrl } = splitProxy(unwrap(raw))
  let c = unwrap(value)
  c = c.replace(/\s*;\s*/g, '; ').replace(/;\s*$/, '').trim()
  c = encodeNonAscii(c)
  return c ? c + (proxyUrl ? ` @proxy=${proxyUrl}` : '') : c
}

/** Why a (cleaned) cookie cannot be sent as a header, or `undefined`. Never quotes the cookie. */
export function cookieProblem (cookie: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const m = /[\x00-\x08\x0a-\x1f\x7f]/.exec(cookie)
  if (!m) return undefined
  return `contains a control character (U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}) at position ${m.index + 1}`
}
