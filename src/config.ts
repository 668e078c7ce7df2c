/**
 * Configuration for the standalone server: environment (and `.env`), then `config.json`, then
 * defaults, merged key by key. Cookies come from `COOKIE` when set, else `COOKIE_FILE`, else
 * `cookie.txt`. A bad value stops start-up with a message naming the key.
 *
 * Pure: the caller passes the environment and a file reader, so nothing here touches `process`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { MAX_TIMER_MS, type AccountOption, type GatewayOptions } from './options.js'
import { splitAccount, splitProxy } from './pool.js'
import type { ThinkingOutput } from './openai/transform.js'

export class ConfigError extends Error {
  constructor (readonly key: string, message: string) {
    super(`Invalid configuration ${key}: ${message}`)
    this.name = 'ConfigError'
  }
}

const Bool = Type.Boolean()
const Int = (min: number) => Type.Integer({ minimum: min })
/** Durations that become Node timers: setTimeout fires at once beyond 2^31-1 ms (~24.8 days). */
const Ms = (min: number) => Type.Integer({ minimum: min, maximum: MAX_TIMER_MS })
const Str = Type.String()

/** Every key, as documented in `.env.example` and the README. */
export const ConfigSchema = Type.Object({
  API_KEY: Type.Optional(Str),
  API_KEY_FILE: Type.Optional(Str),
  QWEN_TOKEN: Type.Optional(Str),
  COOKIE: Type.Optional(Str),
  COOKIE_FILE: Type.Optional(Str),
  ACCOUNTS: Type.Optional(Str),
  ACCOUNTS_FILE: Type.Optional(Str),
  STATE_FILE: Type.Optional(Str),
  STATE_SECRET: Type.Optional(Str),
  BREAKER_DEGRADED_COOLDOWN_MS: Type.Optional(Int(1)),
  BREAKER_DOWN_COOLDOWN_MS: Type.Optional(Int(1)),
  BREAKER_MAX_COOLDOWN_MS: Type.Optional(Int(1)),
  SERVER_MODE: Type.Optional(Bool),
  DEBUG_MODE: Type.Optional(Bool),
  LOG_LEVEL: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))),
  PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  SERVER_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  HOST: Type.Optional(Str),
  VISION_FALLBACK_MODEL: Type.Optional(Str),
  AUTO_REFRESH_TOKEN: Type.Optional(Bool),
  TOKEN_REFRESH_INTERVAL_HOURS: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: Math.floor(MAX_TIMER_MS / 3_600_000) })),
  QWEN_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  THINKING_OUTPUT: Type.Optional(Type.Union([Type.Literal('reasoning_content'), Type.Literal('think_tags'), Type.Literal('hidden')])),
  UPSTREAM_CONNECT_TIMEOUT_MS: Type.Optional(Ms(1)),
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS: Type.Optional(Ms(1)),
  UPSTREAM_IDLE_TIMEOUT_MS: Type.Optional(Ms(1)),
  REQUEST_TIMEOUT_MS: Type.Optional(Ms(1)),
  KEEPALIVE_INTERVAL_MS: Type.Optional(Ms(100)),
  PROXY_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  MODEL_ALIASES: Type.Optional(Type.Record(Type.String(), Type.String())),
  BODY_LIMIT_BYTES: Type.Optional(Int(1024)),
  CORS_ORIGINS: Type.Optional(Str),
  MODELS_CACHE_TTL_MS: Type.Optional(Int(0)),
  MAX_RETRIES: Type.Optional(Int(0)),
})
export type ConfigValues = Static<typeof ConfigSchema>

export interface ConfigSources {
  /** Environment variables (with `.env` already merged under them by the caller). */
  env: Record<string, string | undefined>
  /** Reads a file relative to the working directory; `undefined` when it does not exist. */
  readFile: (path: string) => string | undefined
}

export interface ServerSettings {
  port: number
  host: string
  logLevel: string
}

export interface LoadedConfig {
  options: GatewayOptions
  server: ServerSettings
  /** Where pool state is saved (`STATE_FILE`, default data/state.json; empty string disables). */
  stateFile: string | undefined
  /** Where the cookies came from, for the start-up log. */
  cookieSource: 'COOKIE' | 'COOKIE_FILE' | 'cookie.txt' | 'none'
  /** Whether config.json was found. */
  configFile: boolean
}

const TRUE = new Set(['true', '1', 'yes'])
const FALSE = new Set(['false', '0', 'no'])

/** Convert one raw value (an env string or a config.json value) to what the schema wants. */
function coerce (key: string, schema: TSchema, raw: unknown): unknown {
  const type = (schema as { type?: string }).type
  if (type === 'boolean') {
    if (typeof raw === 'boolean') return raw
    const s = String(raw).trim().toLowerCase()
    if (TRUE.has(s)) return true
    if (FALSE.has(s)) return false
    throw new ConfigError(key, `expected true/false/1/0/yes/no, got ${JSON.stringify(raw)}`)
  }
  if (type === 'integer' || type === 'number') {
    if (typeof raw === 'number') return raw
    const s = String(raw).trim()
    const n = s === '' ? NaN : Number(s)
    if (!Number.isFinite(n)) throw new ConfigError(key, `expected a number, got ${JSON.stringify(raw)}`)
    return n
  }
  if (type === 'object') {
    if (typeof raw === 'object' && raw !== null) return raw
    try {
      return JSON.parse(String(raw))
    } catch {
      throw new ConfigError(key, 'expected a JSON object')
    }
  }
  return typeof raw === 'string' ? raw.trim() : raw
}

/**
 * Sign-in accounts, `email:password` entries separated by `|||` or newlines (`#` comments), each
 * optionally ending in `@proxy=<url>`.
 */
export function parseAccounts (key: string, text: string): AccountOption[] {
  const out: AccountOption[] = []
  for (const line of entries(text, /\|\|\||\n/)) {
    const { value, proxyUrl } = splitProxy(line)
    const acc = splitAccount(value)
    if (!acc) throw new ConfigError(key, `expected email:password entries, got one without a password (${line.slice(0, 3)}…)`)
    out.push({ ...acc, ...(proxyUrl ? { proxyUrl } : {}) })
  }
  return out
}

/**
 * Split a cookie list: on `|||`, on newlines, and on the two characters `\n` (a common way of
 * writing newlines in one-line env files). Blank entries and `#` comments are dropped, and paste
 * damage is cleaned: surrounding quotes, a leading `Cookie:`, stray whitespace.
 */
export function parseCookies (text: string): string[] {
  return entries(text, /\|\|\||\n|\\n/).map(cleanCookie).filter((c) => c.length > 0)
}

/** A list of entries: split, trimmed, blank entries and `#` comments dropped. */
function entries (text: string, separators: RegExp): string[] {
  return text.replace(/\r/g, '').split(separators).map((e) => e.trim()).filter((e) => e.length > 0 && !e.startsWith('#'))
}

export function cleanCookie (raw: string): string {
  const { value, proxyUrl } = splitProxy(raw)
  const suffix = proxyUrl ? ` @proxy=${proxyUrl}` : ''
  let c = value.trim()
  for (let i = 0; i < 2; i++) {
    if (c.length >= 2 && ((c.startsWith('"') && c.endsWith('"')) || (c.startsWith("'") && c.endsWith("'")))) c = c.slice(1, -1).trim()
    if (/^cookie\s*:/i.test(c)) c = c.replace(/^cookie\s*:\s*/i, '')
  }
  c = c.replace(/\s*;\s*/g, '; ').replace(/;\s*$/, '').trim()
  return c ? c + suffix : c
}

function readJson (sources: ConfigSources, path: string): Record<string, unknown> | undefined {
  const text = sources.readFile(path)
  if (text === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(path, `is not valid JSON (${(err as Error).message})`)
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(path, 'must hold a JSON object')
  return parsed as Record<string, unknown>
}

/** Merge env over config.json over defaults and validate every key. */
export function loadConfig (sources: ConfigSources): LoadedConfig {
  const file = readJson(sources, 'config.json')
  const values: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const envRaw = sources.env[key]
    const raw = envRaw !== undefined && envRaw !== '' ? envRaw : file?.[key]
    if (raw === undefined || raw === null || raw === '') continue
    const value = coerce(key, schema, raw)
    const inner = (schema as TSchema & { anyOf?: TSchema[] })
    if (!Value.Check(inner, value)) {
      const first = Value.Errors(inner, value).First()
      throw new ConfigError(key, `${first?.message ?? 'invalid value'} (got ${JSON.stringify(value)})`)
    }
    values[key] = value
  }
  const v = values as ConfigValues

  const readSecret = (key: string, path: string | undefined): string | undefined => {
    if (!path) return undefined
    const text = sources.readFile(path)
    if (text === undefined) throw new ConfigError(key, `file ${path} does not exist`)
    return text.trim()
  }
  const apiKey = v.API_KEY ?? readSecret('API_KEY_FILE', v.API_KEY_FILE)

  let cookies: string[] = []
  let cookieSource: LoadedConfig['cookieSource'] = 'none'
  if (sources.env.COOKIE !== undefined && sources.env.COOKIE.trim() !== '') {
    cookies = parseCookies(sources.env.COOKIE)
    cookieSource = 'COOKIE'
  } else if (v.COOKIE_FILE) {
    cookies = parseCookies(readSecret('COOKIE_FILE', v.COOKIE_FILE)!)
    cookieSource = 'COOKIE_FILE'
  } else {
    const text = sources.readFile('cookie.txt')
    if (text !== undefined) {
      cookies = parseCookies(text)
      cookieSource = cookies.length > 0 ? 'cookie.txt' : 'none'
    }
  }

  const accountsText = v.ACCOUNTS ?? readSecret('ACCOUNTS_FILE', v.ACCOUNTS_FILE) ?? sources.readFile('accounts.txt')
  const accounts = accountsText ? parseAccounts(v.ACCOUNTS ? 'ACCOUNTS' : 'ACCOUNTS_FILE', accountsText) : []
  const policy = {
    ...(v.BREAKER_DEGRADED_COOLDOWN_MS !== undefined ? { degradedCooldownMs: v.BREAKER_DEGRADED_COOLDOWN_MS } : {}),
    ...(v.BREAKER_DOWN_COOLDOWN_MS !== undefined ? { downCooldownMs: v.BREAKER_DOWN_COOLDOWN_MS } : {}),
    ...(v.BREAKER_MAX_COOLDOWN_MS !== undefined ? { maxCooldownMs: v.BREAKER_MAX_COOLDOWN_MS } : {}),
  }

  const options: GatewayOptions = {
    cookies,
    ...(accounts.length ? { accounts } : {}),
    ...(Object.keys(policy).length ? { poolPolicy: policy } : {}),
    ...(v.STATE_SECRET ? { stateSecret: v.STATE_SECRET } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(v.QWEN_TOKEN ? { qwenToken: v.QWEN_TOKEN } : {}),
    ...(v.SERVER_MODE !== undefined ? { serverMode: v.SERVER_MODE } : {}),
    ...(v.DEBUG_MODE !== undefined ? { debugMode: v.DEBUG_MODE } : {}),
    ...(v.QWEN_BASE_URL ? { qwenBaseUrl: v.QWEN_BASE_URL } : {}),
    ...(v.VISION_FALLBACK_MODEL ? { visionFallbackModel: v.VISION_FALLBACK_MODEL } : {}),
    ...(v.AUTO_REFRESH_TOKEN !== undefined ? { autoRefreshToken: v.AUTO_REFRESH_TOKEN } : {}),
    ...(v.TOKEN_REFRESH_INTERVAL_HOURS !== undefined ? { tokenRefreshIntervalHours: v.TOKEN_REFRESH_INTERVAL_HOURS } : {}),
    ...(v.THINKING_OUTPUT ? { thinkingOutput: v.THINKING_OUTPUT as ThinkingOutput } : {}),
    ...(v.UPSTREAM_CONNECT_TIMEOUT_MS !== undefined ? { upstreamConnectTimeoutMs: v.UPSTREAM_CONNECT_TIMEOUT_MS } : {}),
    ...(v.UPSTREAM_FIRST_BYTE_TIMEOUT_MS !== undefined ? { upstreamFirstByteTimeoutMs: v.UPSTREAM_FIRST_BYTE_TIMEOUT_MS } : {}),
    ...(v.UPSTREAM_IDLE_TIMEOUT_MS !== undefined ? { upstreamIdleTimeoutMs: v.UPSTREAM_IDLE_TIMEOUT_MS } : {}),
    ...(v.REQUEST_TIMEOUT_MS !== undefined ? { requestTimeoutMs: v.REQUEST_TIMEOUT_MS } : {}),
    ...(v.KEEPALIVE_INTERVAL_MS !== undefined ? { keepAliveIntervalMs: v.KEEPALIVE_INTERVAL_MS } : {}),
    ...(v.PROXY_URL ? { proxyUrl: v.PROXY_URL } : {}),
    ...(v.MODEL_ALIASES ? { modelAliases: v.MODEL_ALIASES } : {}),
    ...(v.BODY_LIMIT_BYTES !== undefined ? { bodyLimitBytes: v.BODY_LIMIT_BYTES } : {}),
    ...(v.CORS_ORIGINS ? { corsOrigins: v.CORS_ORIGINS === '*' ? '*' : v.CORS_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(v.MODELS_CACHE_TTL_MS !== undefined ? { modelsCacheTtlMs: v.MODELS_CACHE_TTL_MS } : {}),
    ...(v.MAX_RETRIES !== undefined ? { maxRetries: v.MAX_RETRIES } : {}),
  }
  // PORT > SERVER_PORT (env) > SERVER_PORT (config.json) > 8000: the merge above already put the
  // env's SERVER_PORT over the file's.
  const port = v.PORT ?? v.SERVER_PORT ?? 8000
  // An explicitly empty STATE_FILE turns persistence off.
  const stateFile = sources.env.STATE_FILE === '' ? undefined : (v.STATE_FILE ?? 'data/state.json')
  return {
    options,
    stateFile,
    server: { port, host: v.HOST ?? '0.0.0.0', logLevel: v.DEBUG_MODE ? 'debug' : (v.LOG_LEVEL ?? 'info') },
    cookieSource,
    configFile: file !== undefined,
  }
}
