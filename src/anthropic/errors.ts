/**
 * Errors in the Anthropic envelope `{type: "error", error: {type, message}}`. The gateway's errors
 * (and Fastify's own) are first mapped as for the OpenAI face, so status, message and headers
 * (`retry-after`, `x-should-retry`) are the same on every face; only the envelope and the error type
 * differ.
 */
import type { FaceError } from '../faces/face.js'
import { toOpenAIError } from '../errors.js'

export interface AnthropicErrorBody {
  type: 'error'
  error: { type: string; message: string }
}

/** Anthropic's error type for an HTTP status. */
export function anthropicErrorType (status: number): string {
  switch (status) {
    case 400: return 'invalid_request_error'
    case 401: return 'authentication_error'
    case 403: return 'permission_error'
    case 404: return 'not_found_error'
    case 413: return 'request_too_large'
    case 429: return 'rate_limit_error'
    case 503:
    case 529: return 'overloaded_error'
    default: return status < 500 ? 'invalid_request_error' : 'api_error'
  }
}

export function anthropicErrorBody (status: number, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type: anthropicErrorType(status), message } }
}

/** The status, Anthropic body and headers for any thrown value (unknown errors: 500 without internals). */
export function toAnthropicError (err: unknown): { status: number; body: AnthropicErrorBody; headers: Record<string, string>; code: string | null } {
  const { status, body, headers } = toOpenAIError(err)
  return { status, body: anthropicErrorBody(status, body.error.message), headers, code: body.error.code }
}

/** The mid-stream error event (the SDK throws it as an `APIError`). */
export function anthropicErrorEvent (e: FaceError): string {
  return `event: error\ndata: ${JSON.stringify(anthropicErrorBody(e.status, e.message))}\n\n`
}
