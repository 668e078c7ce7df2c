/**
 * JSON Schema checks for what the model writes: tool-call arguments and structured output. Formats
 * are not checked (no `ajv-formats`), unknown keywords are ignored (`strict: false`), every problem
 * is reported (the corrective retry tells the model all of them), values are never coerced or
 * filled in.
 *
 * Compiling costs milliseconds per schema and agents resend the same tools every turn, so compiled
 * checks are kept in a bounded cache keyed by the schema's JSON text. One compiler belongs to one
 * gateway instance (the route creates it); Ajv's own reference to each schema is dropped after
 * compiling, so the cache bound is the only memory kept.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'

export type Check = (value: unknown) => string[]

export const SCHEMA_CACHE_SIZE = 256

export class SchemaCompiler {
  private ajv: Ajv | undefined
  private readonly cache = new Map<string, Check>()

  constructor (private readonly size = SCHEMA_CACHE_SIZE) {}

  /**
   * A check for `schema` returning the problems found (none when the value is valid), or the reason
   * the schema itself cannot be used. A root `$schema` (draft 2020-12 from zod and others) and `$id`
   * are ignored: the keywords clients use mean the same in draft-07, and ids would collide.
   */
  compile (schema: Record<string, unknown>): { check: Check } | { error: string } {
    const { $schema: _s, $id: _i, ...rest } = schema
    const key = JSON.stringify(rest)
    const hit = this.cache.get(key)
    if (hit) {
      this.cache.delete(key)
      this.cache.set(key, hit)
      return { check: hit }
    }
    this.ajv ??= new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false, coerceTypes: false, useDefaults: false })
    let validate: ValidateFunction
    try {
      validate = this.ajv.compile(rest)
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) }
    } finally {
      this.ajv.removeSchema(rest)
    }
    const check: Check = (value) => validate(value) ? [] : describe(validate.errors ?? [])
    this.cache.set(key, check)
    if (this.cache.size > this.size) this.cache.delete(this.cache.keys().next().value!)
    return { check }
  }
}

/** Ajv's errors in words: `city: must be string`, `must have required property 'city'`. */
function describe (errors: ErrorObject[]): string[] {
  const out = errors.map((e) => {
    const where = e.instancePath ? `${e.instancePath.slice(1).replace(/\//g, '.')}: ` : ''
    const extra = e.keyword === 'additionalProperties' ? ` (\`${(e.params as { additionalProperty: string }).additionalProperty}\`)` : ''
    const allowed = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})` : ''
    return `${where}${e.message ?? 'is invalid'}${extra}${allowed}`
  })
  return [...new Set(out)]
}
