/**
 * The gateway's own route validator compiler. The plugin compiles its route schemas with its own Ajv
 * instances, so an embedding app's Ajv options (Fastify's default `coerceTypes: 'array'`,
 * `removeAdditional`, …) can neither loosen nor rewrite what the gateway accepts:
 * - bodies are never coerced (`"stream": "true"` is a wrong type, not `true`) and unknown fields are kept;
 * - querystrings, params and headers arrive as strings, so there scalars are coerced (never to arrays).
 *
 * A failed check becomes one `InvalidRequestError` in the OpenAI envelope: `param` names the field
 * (`messages[0].content`), code `invalid_type` for a wrong JSON type and `invalid_value` for anything
 * else (a missing field, an empty string or list, a value out of range). Values are never echoed.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'
import { InvalidRequestError, clip } from './errors.js'

const COMMON: Options = {
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  // `verbose` keeps the failing schema and data on each error: needed to name the expected type.
  verbose: true,
  // TypeBox writes plain JSON Schema; strict mode would only add console warnings about unions.
  strict: false,
}

/**
 * A validator compiler for `fastify.setValidatorCompiler()`. Each call makes its own Ajv instances
 * (one per gateway instance, nothing shared between apps).
 */
export function createValidatorCompiler (): FastifySchemaCompiler<unknown> {
  const body = new Ajv({ ...COMMON, coerceTypes: false })
  const strings = new Ajv({ ...COMMON, coerceTypes: true })
  return ({ schema, httpPart }) => {
    const validate: ValidateFunction = (httpPart === 'body' ? body : strings).compile(schema as object)
    return (data: unknown) => {
      if (validate(data)) return true
      return { error: validationError(validate.errors ?? [], httpPart ?? 'body', data) }
    }
  }
}

/** The one error a client is told about, from Ajv's error list (`allErrors: false`). */
export function validationError (errors: ErrorObject[], httpPart = 'body', data?: unknown): InvalidRequestError {
  const err = decisive(errors)
  if (!err) return new InvalidRequestError(`Invalid request ${httpPart}`, null)
  const path = pointerSegments(err.instancePath)
  if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty
    const param = paramOf([...path, missing], data)
    return new InvalidRequestError(`Missing required parameter: '${param}'.`, param)
  }
  const param = path.length ? paramOf(path, data) : null
  const where = param === null ? `the request ${httpPart}` : `'${param}'`
  if (err.keyword === 'type' || err.keyword === 'anyOf') {
    const expected = err.keyword === 'type' ? typesOf(err.schema) : schemaTypes(err.parentSchema)
    return new InvalidRequestError(
      `Invalid type for ${where}: expected ${describeTypes(expected)}, but got ${article(jsonType(err.data))} instead.`,
      param,
      'invalid_type',
    )
  }
  return new InvalidRequestError(`Invalid value for ${where}: ${err.message ?? 'not allowed'}.`, param)
}

/**
 * With `allErrors: false` Ajv stops at the first failure; its last error is the outermost one. When
 * that is a union (`anyOf`) and one branch has the JSON type of the value, that branch's own failure
 * is the useful one (`messages[0].content[1].text`), so descend into it.
 */
function decisive (errors: ErrorObject[]): ErrorObject | undefined {
  let err = errors[errors.length - 1]
  while (err?.keyword === 'anyOf') {
    const branches = (err.parentSchema?.anyOf ?? []) as unknown[]
    const t = jsonType(err.data)
    const idx = branches.findIndex((b) => schemaTypes(b).some((bt) => sameType(bt, t)))
    if (idx < 0) break
    const prefix = `${err.schemaPath}/${idx}/`
    const inner = errors.filter((e) => e.schemaPath.startsWith(prefix))
    if (inner.length === 0) break
    err = inner[inner.length - 1]
  }
  return err
}

/** Whether a value of JSON type `t` (from `jsonType`) belongs to the schema type `bt`, integers and numbers together. */
function sameType (bt: string, t: string): boolean {
  return bt === t || (bt === 'number' && t === 'integer') || (bt === 'integer' && t === 'number')
}

/** The JSON types a schema admits: its `type`, or those of its `anyOf` branches (unions nest). */
function schemaTypes (schema: unknown): string[] {
  const s = schema as { type?: unknown; anyOf?: unknown } | undefined
  if (s?.type !== undefined) return typesOf(s.type)
  return Array.isArray(s?.anyOf) ? s.anyOf.flatMap(schemaTypes) : []
}

function typesOf (type: unknown): string[] {
  if (typeof type === 'string') return [type]
  if (Array.isArray(type)) return type.filter((x): x is string => typeof x === 'string')
  return []
}

function jsonType (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function article (type: string): string {
  if (type === 'null') return 'null'
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function describeTypes (types: string[]): string {
  const names = [...new Set(types)].map(article)
  if (names.length === 0) return 'another type'
  if (names.length === 1) return names[0]!
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`
}

function pointerSegments (pointer: string): string[] {
  return pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/**
 * `['messages', '0', 'content']` → `messages[0].content`: indexes into arrays in brackets, object keys
 * (even numeric ones, as in `logit_bias`) after a dot; keys a client chose are cut.
 */
function paramOf (segments: string[], data: unknown): string {
  let at = data
  let out = ''
  for (const s of segments) {
    if (Array.isArray(at)) out += `[${s}]`
    else out += out ? `.${clip(s, 64)}` : clip(s, 64)
    at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[s] : undefined
  }
  return out
}
