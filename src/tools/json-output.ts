/**
 * JSON mode and structured output (`response_format`): the plan, the block that instructs the
 * model, the check of its answer, and the note a corrective retry appends.
 */
import { InvalidRequestError, UnsupportedParameterError, clip } from '../errors.js'
import type { ChatRequest } from '../schemas.js'
import { extractJson } from './json-text.js'
import { SchemaCompiler, type Check } from './schema.js'

export type OutputPlan =
  | { kind: 'json_object' }
  | { kind: 'json_schema'; name: string; description?: string; schema: Record<string, unknown>; check: Check }

/** The plan for `response_format`, or undefined for plain text. Throws 400s naming the field. */
export function outputPlan (req: ChatRequest, compiler = new SchemaCompiler()): OutputPlan | undefined {
  const rf = req.response_format
  if (rf === undefined || rf === null || rf.type === 'text') return undefined
  if (rf.type === 'json_object') return { kind: 'json_object' }
  if (rf.type !== 'json_schema') {
    throw new UnsupportedParameterError('response_format.type', `response_format \`${clip(rf.type)}\` is not supported; use \`text\`, \`json_object\` or \`json_schema\``)
  }
  const js = rf.json_schema
  if (!js) throw new InvalidRequestError('response_format.json_schema is required for `json_schema`', 'response_format.json_schema')
  const schema = (js.schema ?? {}) as Record<string, unknown>
  const compiled = compiler.compile(schema)
  if ('error' in compiled) {
    throw new InvalidRequestError(`response_format.json_schema.schema is not a usable JSON schema: ${clip(compiled.error, 200)}`, 'response_format.json_schema.schema')
  }
  const plan: OutputPlan = { kind: 'json_schema', name: js.name, schema, check: compiled.check }
  if (js.description) plan.description = js.description
  return plan
}

/** The system block that asks for JSON. */
export function outputBlock (plan: OutputPlan): string {
  const lines = ['# Output format', '']
  if (plan.kind === 'json_object') {
    lines.push('Reply with one valid JSON object and nothing else: no text before or after it, no code fence.')
  } else {
    lines.push(
      `Reply with one valid JSON value (\`${plan.name}\`) that matches the JSON Schema below, and nothing else: no text before or after it, no code fence.`,
      ...(plan.description ? [plan.description] : []),
      `JSON Schema: ${JSON.stringify(plan.schema)}`,
    )
  }
  return lines.join('\n')
}

/** The JSON text to send as content, or the problems with the answer. */
export function checkOutput (plan: OutputPlan, answer: string): { json: string } | { problems: string[] } {
  const got = extractJson(answer, plan.kind === 'json_object' || plan.schema.type === 'object')
  if (!got) return { problems: [plan.kind === 'json_object' ? 'the answer contains no JSON object' : 'the answer contains no JSON value'] }
  if (plan.kind === 'json_object') return { json: got.json }
  const problems = plan.check(got.value)
  return problems.length > 0 ? { problems: problems.map((p) => `the JSON does not match the schema: ${p}`) } : { json: got.json }
}

/** The note a corrective retry appends to the prompt when the answer was not the JSON asked for. */
export function outputCorrection (plan: OutputPlan, problems: string[]): string {
  return [
    '[Gateway note] Your previous answer to this conversation was rejected:',
    ...problems.map((p) => `- ${p}`),
    plan.kind === 'json_object'
      ? 'Answer again with one valid JSON object and nothing else.'
      : `Answer again with one valid JSON value that matches the JSON Schema and nothing else: ${JSON.stringify(plan.schema)}`,
  ].join('\n')
}
