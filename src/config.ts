/**
 * Configuration for the standalone server: environment (and `.env`), then `config.json`, then
 * defaults, merged key by key. Which key feeds which plugin option comes from the options schema
 * (`env` metadata in `src/options.ts`); the keys here are the server's own settings. Cookies come
 * from `COOKIE` when set, else `COOKIE_FILE`, else `cookie.txt`. A bad value stops start-up with a
 * message naming the key.
 *
 * Pure: the caller passes the environment and a file reader, so nothing here touches `process`.
 */
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import {
  GatewayOptionsSchema, cleanCookie, cookieProblem, preview, schemaProblem,
  type AccountOption, type GatewayOptions, type OptionSchema,
} from './options.js'
import { splitAccount, splitProxy } from './entries.js'

export { cleanCookie } from './options.js'

export class ConfigError extends Error {
  constructor (readonly key: string, message: string) {
    super(`Invalid configuration ${key}: ${message}`)
    this.name = 'ConfigError'
  }
}

const Port = Type.Integer({ minimum: 0, maximum: 65535 })

/** Keys of the standalone server that are not plugin options. */
export const ServerConfigSchema = Type.Object({
  PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: 8000 })),
  SERVER_PORT: Type.Optional(Port),
  HOST: Type.Optional(Type.String({ default: '0.0.0.0' })),
  LOG_LEVEL: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' })),
  API_KEY_FILE: Type.Optional(Type.String()),
  COOKIE_FILE: Type.Optional(Type.String()),
  ACCOUNTS_FILE: Type.Optional(Type.String()),
  STATE_FILE: Type.Optional(Type.String({ default: 'data/state.json' })),
})

type ServerConfigValues = Static<typeof ServerConfigSchema>
const SERVER_DEFAULTS = {
  PORT: ServerConfigSchema.properties.PORT.default as number,
  HOST: ServerConfigSchema.properties.HOST.default as string,
  LOG_LEVEL: ServerConfigSchema.properties.LOG_LEVEL.default as string,
  STATE_FILE: ServerConfigSchema.properties.STATE_FILE.default as string,
} as const

/** One configuration key that feeds a plugin option (or a field of one, e.g. `poolPolicy.downCooldownMs`). */
export interface EnvBinding {
  key: string
  path: readonly string[]
  schema: OptionSchema & { default?: unknown }
}

/** Every `env` key of the options schema, with the option it sets (nested objects are walked). */
function bindings (schema: TObject, path: readonly string[] = []): EnvBinding[] {
  const out: EnvBinding[] = []
  for (const [name, prop] of Object.entries(schema.properties) as Array<[string, OptionSchema]>) {
    if (prop.env) out.push({ key: prop.env, path: [...path, name], schema: prop })
    else if (prop.type === 'object' && (prop as TObject).properties) out.push(...bindings(prop as TObject, [...path, name]))
  }
  return out
}
export const ENV_BINDINGS: readonly EnvBinding[] = Object.freeze(bindings(GatewayOptionsSchema))

/**
 * Every configuration key with the schema of its value, as documented in `.env.example` and the
 * README: the server's own keys and the options' `env` keys.
 */
export const ConfigSchema: TObject = Type.Object({
  ...ServerConfigSchema.properties,
  ...Object.fromEntries(ENV_BINDINGS.map((b) => [b.key, Type.Optional(b.schema)])),
})

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
function coerce (key: string, schema: OptionSchema, raw: unknown): unknown {
  switch (schema.envFormat) {
    case 'cookies': return Array.isArray(raw) ? cleanCookieList(key, raw.map(String)) : parseCookies(String(raw), key)
    case 'accounts': return parseAccounts(key, Array.isArray(raw) ? raw.map(String).join('\n') : String(raw))
    case 'origins': {
      if (Array.isArray(raw)) return raw
      const s = String(raw).trim()
      return s === '*' ? '*' : s.split(',').map((o) => o.trim()).filter(Boolean)
    }
  }
  const type = schema.type
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

/** Coerce and validate one key's raw value. */
function read (key: string, schema: OptionSchema, raw: unknown): unknown {
  const value = coerce(key, schema, raw)
  const problem = schemaProblem(schema, value)
  if (problem) throw new ConfigError(key, schema.secret ? problem.message : `${problem.message} (got ${preview(value)})`)
  return value
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
 * damage is cleaned (`cleanCookie`): quotes (also when a newline inside them split the value),
 * a leading `Cookie:`, stray whitespace; non-ASCII characters are percent-encoded. An entry with a
 * control character stops start-up: `ConfigError` naming `key` and the entry's position.
 */
export function parseCookies (text: string, key = 'COOKIE'): string[] {
  return cleanCookieList(key, entries(text, /\|\|\||\n|\\n/))
}

function cleanCookieList (key: string, list: string[]): string[] {
  const out: string[] = []
  list.forEach((raw, i) => {
    const c = cleanCookie(raw)
    const problem = cookieProblem(c)
    if (problem) throw new ConfigError(key, `cookie entry ${i + 1} ${problem}`)
    if (c) out.push(c)
  })
  return out
}

/** A list of entries: split, trimmed, blank entries and `#` comments dropped. */
function entries (text: string, separators: RegExp): string[] {
  return text.replace(/\r/g, '').split(separators).map((e) => e.trim()).filter((e) => e.length > 0 && !e.startsWith('#'))
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

function setPath (target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let t = target
  for (const p of path.slice(0, -1)) t = (t[p] ??= {}) as Record<string, unknown>
  t[path[path.length - 1]!] = value
}

/** Merge env over config.json over defaults and validate every key. */
export function loadConfig (sources: ConfigSources): LoadedConfig {
  const file = readJson(sources, 'config.json')
  /** The raw value of a key: a non-empty env value, else config.json's; `undefined` when neither. */
  const raw = (key: string): unknown => {
    const envRaw = sources.env[key]
    const r = envRaw !== undefined && envRaw !== '' ? envRaw : file?.[key]
    return r === null || r === '' ? undefined : r
  }

  const server: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(ServerConfigSchema.properties) as Array<[string, TSchema]>) {
    const r = raw(key)
    if (r !== undefined) server[key] = read(key, schema, r)
  }
  const s = server as Partial<ServerConfigValues>

  const options: Record<string, unknown> = {}
  for (const b of ENV_BINDINGS) {
    const r = raw(b.key)
    // A blank COOKIE is unset (cookie files are read then), not an empty list.
    if (r === undefined || (b.schema.envFormat === 'cookies' && typeof r === 'string' && r.trim() === '')) continue
    const value = read(b.key, b.schema, r)
    if (value !== '') setPath(options, b.path, value)
  }

  const readSecret = (key: string, path: string | undefined): string | undefined => {
    if (!path) return undefined
    const text = sources.readFile(path)
    if (text === undefined) throw new ConfigError(key, `file ${path} does not exist`)
    return text.trim()
  }
  // Secrets from files when their key is unset.
  if (options.apiKey === undefined) {
    const apiKey = readSecret('API_KEY_FILE', s.API_KEY_FILE)
    if (apiKey) options.apiKey = apiKey
  }
  let cookieSource: LoadedConfig['cookieSource'] = 'none'
  if (options.cookies !== undefined) {
    cookieSource = 'COOKIE'
  } else if (s.COOKIE_FILE) {
    options.cookies = parseCookies(readSecret('COOKIE_FILE', s.COOKIE_FILE)!, 'COOKIE_FILE')
    cookieSource = 'COOKIE_FILE'
  } else {
    const text = sources.readFile('cookie.txt')
    options.cookies = text === undefined ? [] : parseCookies(text, 'cookie.txt')
    if ((options.cookies as string[]).length > 0) cookieSource = 'cookie.txt'
  }
  if (options.accounts === undefined) {
    const key = s.ACCOUNTS_FILE ? 'ACCOUNTS_FILE' : 'accounts.txt'
    const text = s.ACCOUNTS_FILE ? readSecret('ACCOUNTS_FILE', s.ACCOUNTS_FILE) : sources.readFile('accounts.txt')
    const accounts = text ? parseAccounts(key, text) : []
    if (accounts.length) options.accounts = accounts
  } else if ((options.accounts as AccountOption[]).length === 0) {
    delete options.accounts
  }

  // PORT > SERVER_PORT (env) > SERVER_PORT (config.json) > 8000: the merge above already put the
  // env's SERVER_PORT over the file's.
  const port = s.PORT ?? s.SERVER_PORT ?? SERVER_DEFAULTS.PORT
  // An explicitly empty STATE_FILE turns persistence off.
  const stateFile = sources.env.STATE_FILE === '' ? undefined : (s.STATE_FILE ?? SERVER_DEFAULTS.STATE_FILE)
  return {
    options: options as GatewayOptions,
    stateFile,
    server: { port, host: s.HOST ?? SERVER_DEFAULTS.HOST, logLevel: options.debugMode ? 'debug' : (s.LOG_LEVEL ?? SERVER_DEFAULTS.LOG_LEVEL) },
    cookieSource,
    configFile: file !== undefined,
  }
}
