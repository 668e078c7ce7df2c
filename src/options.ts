/**
 * The plugin's options (camelCase) and their defaults. The plugin never reads env or files: the
 * entry points (`src/server.ts`, `src/demo.ts`) build these from configuration.
 */
import type { Dispatcher } from 'undici'
import type { ThinkingOutput } from './openai/transform.js'
import type { PoolPolicy } from './pool.js'
import type { StateFile } from './state.js'

/** A sign-in account (e-mail and password), optionally with its own proxy. */
export interface AccountOption { email: string; password: string; proxyUrl?: string }

/** What `onTokenRefreshed` is told. */
export interface TokenRefreshedEvent {
  identity: string
  token: string
  /** The deployment has exactly one identity, from a cookie (the original's single-cookie mode). */
  singleCookie: boolean
}

export interface GatewayOptions {
  /** Gateway access key; empty or unset means open (server mode). */
  apiKey?: string
  /** Browser cookies, one per upstream account; an entry may end in `@proxy=http://host:port`. */
  cookies?: string[]
  /** Accounts that sign in with e-mail and password. */
  accounts?: AccountOption[]
  /** A token for the single configured cookie, or a token-only identity when there is no cookie. */
  qwenToken?: string
  /** `true`: the gateway's own identities serve every request. `false`: callers bring theirs. */
  serverMode?: boolean
  debugMode?: boolean
  /** The upstream; the only switch between chat.qwen.ai and the simulator. */
  qwenBaseUrl?: string
  visionFallbackModel?: string
  autoRefreshToken?: boolean
  tokenRefreshIntervalHours?: number
  thinkingOutput?: ThinkingOutput
  upstreamConnectTimeoutMs?: number
  upstreamFirstByteTimeoutMs?: number
  upstreamIdleTimeoutMs?: number
  /** Whole-request budget for one completion. */
  requestTimeoutMs?: number
  /** SSE comment sent after this much upstream silence, once the stream is committed. */
  keepAliveIntervalMs?: number
  /** Send all upstream traffic through this HTTP(S) proxy. */
  proxyUrl?: string
  /** Client-facing model names mapped onto upstream models, e.g. `{"gpt-4o": "qwen3-max"}`. */
  modelAliases?: Record<string, string>
  bodyLimitBytes?: number
  /** Allowed CORS origins; `*` by default. */
  corsOrigins?: string | string[]
  modelsCacheTtlMs?: number
  /** Cap on buffered upstream bytes (one SSE line, one JSON body, one aggregated answer). */
  maxBufferBytes?: number
  /** Retries on other identities before the first byte reaches the client. */
  maxRetries?: number
  /** Parallel token fetches at start-up. */
  startupConcurrency?: number
  /** Circuit-breaker thresholds and cooldowns. */
  poolPolicy?: Partial<PoolPolicy>
  /** Where pool state is saved across restarts (the plugin itself never touches files). */
  stateFile?: StateFile
  /** Key for sealing tokens in the saved state; without it tokens are not saved. */
  stateSecret?: string
  /** Debounce for state saves. */
  stateDebounceMs?: number
  /** Called after an identity's token was refreshed (the standalone server writes config.json). */
  onTokenRefreshed?: (event: TokenRefreshedEvent) => void | Promise<void>
  /** An undici dispatcher to use instead of the plugin's own Agent (it is not closed by the plugin). */
  dispatcher?: Dispatcher
  /** Clock for tokens, cooldowns and caches (tests). */
  now?: () => number
}

type OptionalKeys = 'apiKey' | 'qwenToken' | 'proxyUrl' | 'dispatcher' | 'stateFile' | 'stateSecret' | 'onTokenRefreshed'
export type ResolvedOptions = Required<Omit<GatewayOptions, OptionalKeys>> & Pick<GatewayOptions, OptionalKeys>

export const DEFAULTS = {
  cookies: [] as string[],
  accounts: [] as AccountOption[],
  serverMode: true,
  debugMode: false,
  qwenBaseUrl: 'https://chat.qwen.ai',
  visionFallbackModel: 'qwen3-vl-plus',
  autoRefreshToken: true,
  tokenRefreshIntervalHours: 24,
  thinkingOutput: 'reasoning_content' as ThinkingOutput,
  upstreamConnectTimeoutMs: 10_000,
  upstreamFirstByteTimeoutMs: 60_000,
  upstreamIdleTimeoutMs: 120_000,
  requestTimeoutMs: 600_000,
  keepAliveIntervalMs: 15_000,
  modelAliases: {} as Record<string, string>,
  bodyLimitBytes: 20 * 1024 * 1024,
  corsOrigins: '*' as string | string[],
  modelsCacheTtlMs: 10 * 60_000,
  maxBufferBytes: 8 * 1024 * 1024,
  maxRetries: 2,
  startupConcurrency: 4,
  poolPolicy: {} as Partial<PoolPolicy>,
  stateDebounceMs: 1000,
} as const

/** Every option key: register() options also carry Fastify's own keys (prefix, …), which are not ours. */
const OPTION_KEYS: ReadonlyArray<keyof GatewayOptions> = [
  'apiKey', 'cookies', 'qwenToken', 'serverMode', 'debugMode', 'qwenBaseUrl', 'visionFallbackModel',
  'autoRefreshToken', 'tokenRefreshIntervalHours', 'thinkingOutput', 'upstreamConnectTimeoutMs',
  'upstreamFirstByteTimeoutMs', 'upstreamIdleTimeoutMs', 'requestTimeoutMs', 'keepAliveIntervalMs', 'proxyUrl',
  'modelAliases', 'bodyLimitBytes', 'corsOrigins', 'modelsCacheTtlMs', 'maxBufferBytes', 'maxRetries',
  'startupConcurrency', 'dispatcher', 'now', 'accounts', 'poolPolicy', 'stateFile', 'stateSecret',
  'stateDebounceMs', 'onTokenRefreshed',
]

/** The longest delay a Node timer honours (2^31-1 ms); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647

export function resolveOptions (o: GatewayOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    ...DEFAULTS,
    cookies: [...DEFAULTS.cookies],
    accounts: [...DEFAULTS.accounts],
    poolPolicy: { ...DEFAULTS.poolPolicy },
    modelAliases: { ...DEFAULTS.modelAliases },
    now: Date.now,
  }
  for (const k of OPTION_KEYS) {
    const v = o[k]
    if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v
  }
  if (r.apiKey === '') delete r.apiKey
  if (r.qwenToken === '') delete r.qwenToken
  if (r.stateSecret === '') delete r.stateSecret
  r.cookies = r.cookies.map((c) => c.trim()).filter((c) => c.length > 0)
  r.qwenBaseUrl = r.qwenBaseUrl.replace(/\/+$/, '')
  for (const k of ['upstreamConnectTimeoutMs', 'upstreamFirstByteTimeoutMs', 'upstreamIdleTimeoutMs', 'requestTimeoutMs', 'keepAliveIntervalMs', 'stateDebounceMs'] as const) {
    r[k] = Math.min(r[k], MAX_TIMER_MS)
  }
  r.tokenRefreshIntervalHours = Math.min(r.tokenRefreshIntervalHours, MAX_TIMER_MS / 3_600_000)
  return r
}
