/**
 * Errors a client can see. Every one of them is rendered in the OpenAI envelope
 * `{error:{message,type,param,code}}` with the status it carries.
 */

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'server_error'

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

/** Longest client-supplied value echoed in an error message; longer ones are cut with an ellipsis. */
export const ECHO_LIMIT = 100

/** A client-supplied value as it may appear in an error message: at most `max` characters. */
export function clip (value: unknown, max = ECHO_LIMIT): string {
  const s = String(value)
  return s.length <= max ? s : `${s.slice(0, max)}…`
}

export interface GatewayErrorInit {
  status: number
  type: OpenAIErrorType
  code: string
  param?: string | null
  headers?: Record<string, string>
  cause?: unknown
}

export class GatewayError extends Error {
  readonly statusCode: number
  readonly type: OpenAIErrorType
  readonly code: string
  readonly param: string | null
  readonly headers: Record<string, string>

  constructor (message: string, init: GatewayErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'GatewayError'
    this.statusCode = init.status
    this.type = init.type
    this.code = init.code
    this.param = init.param ?? null
    this.headers = init.headers ?? {}
  }

  toJSON (): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

/** 400: the request is malformed or asks for something this gateway does not do. */
export class InvalidRequestError extends GatewayError {
  constructor (message: string, param: string | null = null, code = 'invalid_value') {
    super(message, { status: 400, type: 'invalid_request_error', code, param })
    this.name = 'InvalidRequestError'
  }
}

/** 400 `unsupported_parameter`, naming the field. */
export class UnsupportedParameterError extends InvalidRequestError {
  constructor (param: string, message: string) {
    super(message, param, 'unsupported_parameter')
    this.name = 'UnsupportedParameterError'
  }
}

/** 401: the caller's gateway key is missing or wrong. */
export class AuthenticationError extends GatewayError {
  constructor (message: string, code = 'invalid_api_key') {
    super(message, { status: 401, type: 'invalid_request_error', code })
    this.name = 'AuthenticationError'
  }
}

/** 404 `model_not_found`. */
export class ModelNotFoundError extends GatewayError {
  constructor (model: string) {
    super(`The model \`${clip(model)}\` does not exist or you do not have access to it.`, {
      status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model',
    })
    this.name = 'ModelNotFoundError'
  }
}

/** 404 for unknown routes. */
export class RouteNotFoundError extends GatewayError {
  constructor (method: string, url: string) {
    super(`Unknown request URL: ${clip(method, 20)} ${clip(url.split('?')[0], 200)}`, { status: 404, type: 'invalid_request_error', code: 'unknown_url' })
    this.name = 'RouteNotFoundError'
  }
}

/** What went wrong upstream, decided before the response was committed. */
export type UpstreamErrorKind =
  | 'rate_limited'
  | 'challenge'
  | 'auth_failed'
  | 'bad_request'
  | 'upstream_error'
  | 'timeout'
  | 'no_identity'
  /** A cap the gateway itself imposes (buffered answer, SSE line or event): says nothing about the account. */
  | 'limit'
  /** The upstream finished an answer with no text (no reasoning cut, no stop cut, no tool call). */
  | 'empty_answer'
  /** Every upstream connection the gateway allows stayed busy past the queue budget. */
  | 'overloaded'

/** Cap for `retry-after` on a 429 that clients should wait out (DECISIONS "Error mapping"). */
export const RETRY_AFTER_CAP_S = 60

/**
 * An upstream failure, mapped to the status and code that DECISIONS "Error mapping" prescribes.
 * `retryAfterMs` (rate limits only) is the time until the earliest cooldown ends.
 */
export class UpstreamError extends GatewayError {
  readonly kind: UpstreamErrorKind
  /** Whether another identity might succeed (pool failover). */
  readonly retryable: boolean
  /** Rate limits: how long the upstream asked to wait. */
  readonly retryAfterMs: number | undefined
  /**
   * The failure is the request's fault, not the account's (e.g. a captcha answered to a body close to
   * the upstream's size limit): no cooldown, no failover.
   */
  readonly requestCaused: boolean

  constructor (kind: UpstreamErrorKind, message: string, opts: { retryAfterMs?: number; cause?: unknown; requestCaused?: boolean } = {}) {
    super(message, { ...withRetryAfter(mapKind(kind, opts.retryAfterMs), opts.retryAfterMs), ...(opts.cause === undefined ? {} : { cause: opts.cause }) })
    this.name = 'UpstreamError'
    this.kind = kind
    this.requestCaused = opts.requestCaused === true
    this.retryable = !this.requestCaused && kind !== 'bad_request' && kind !== 'no_identity' && kind !== 'limit' && kind !== 'overloaded'
    this.retryAfterMs = opts.retryAfterMs
  }
}

/** `retry-after` is whole seconds, at least one. */
function wholeSeconds (ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/** A 503 that knows when an account comes back says so in `retry-after` (whole seconds). */
function withRetryAfter (init: GatewayErrorInit, retryAfterMs: number | undefined): GatewayErrorInit {
  if (retryAfterMs === undefined || init.status !== 503 || init.headers?.['retry-after']) return init
  return { ...init, headers: { ...init.headers, 'retry-after': String(wholeSeconds(retryAfterMs)) } }
}

function mapKind (kind: UpstreamErrorKind, retryAfterMs?: number): GatewayErrorInit {
  switch (kind) {
    case 'rate_limited': {
      const seconds = wholeSeconds(retryAfterMs ?? 1000)
      if (seconds <= RETRY_AFTER_CAP_S) {
        return { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded', headers: { 'retry-after': String(seconds) } }
      }
      return {
        status: 429,
        type: 'insufficient_quota',
        code: 'insufficient_quota',
        headers: { 'retry-after': String(seconds), 'x-should-retry': 'false' },
      }
    }
    case 'challenge':
      return { status: 503, type: 'server_error', code: 'upstream_challenge' }
    case 'auth_failed':
      return { status: 503, type: 'server_error', code: 'upstream_auth_failed', headers: { 'x-should-retry': 'false' } }
    case 'bad_request':
      return { status: 502, type: 'server_error', code: 'upstream_bad_request' }
    case 'timeout':
      return { status: 504, type: 'server_error', code: 'upstream_timeout' }
    case 'no_identity':
      return { status: 503, type: 'server_error', code: 'no_upstream_identity' }
    case 'upstream_error':
      return { status: 502, type: 'server_error', code: 'upstream_error' }
    case 'limit':
      return { status: 502, type: 'server_error', code: 'upstream_response_too_large' }
    case 'empty_answer':
      return { status: 502, type: 'server_error', code: 'upstream_empty_answer' }
    case 'overloaded':
      return { status: 503, type: 'server_error', code: 'gateway_overloaded', headers: { 'retry-after': '1' } }
  }
}

/** The envelope for any thrown value; unknown errors become a 500 without internals. */
export function toOpenAIError (err: unknown): { status: number; body: OpenAIErrorBody; headers: Record<string, string> } {
  if (err instanceof GatewayError) return { status: err.statusCode, body: err.toJSON(), headers: err.headers }
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown }
  const status = typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500
  if (status >= 500) {
    return { status, body: { error: { message: 'Internal server error', type: 'server_error', param: null, code: 'internal_error' } }, headers: {} }
  }
  // Fastify's own client errors (JSON parse, body limit, content type, validation).
  const code = status === 413 ? 'request_too_large' : (e.validation ? validationCode(e.validation) : fastifyCode(e.code))
  const type: OpenAIErrorType = status === 404 ? 'not_found_error' : 'invalid_request_error'
  return { status, body: { error: { message: clip(e.message ?? 'Bad request', 300), type, param: validationParam(e.validation), code } }, headers: {} }
}

/** Ajv errors from a compiler other than the gateway's: a wrong JSON type is `invalid_type`. */
function validationCode (validation: unknown): string {
  const v = Array.isArray(validation) ? validation[0] as { keyword?: string } | undefined : undefined
  return v?.keyword === 'type' ? 'invalid_type' : 'invalid_value'
}

/** `/messages/0/role` → `messages[0].role`; a missing property names itself. */
function validationParam (validation: unknown): string | null {
  if (!Array.isArray(validation) || validation.length === 0) return null
  const v = validation[0] as { instancePath?: string; params?: { missingProperty?: string } }
  const parts = (v.instancePath ?? '').split('/').filter(Boolean)
  if (v.params?.missingProperty) parts.push(v.params.missingProperty)
  if (parts.length === 0) return null
  return parts.reduce((acc, p) => /^\d+$/.test(p) ? `${acc}[${p}]` : (acc ? `${acc}.${p}` : p), '')
}

function fastifyCode (code: string | undefined): string {
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'invalid_json'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'invalid_content_type'
    default:
      return 'invalid_request'
  }
}
