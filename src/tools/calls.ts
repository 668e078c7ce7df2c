/**
 * One call candidate → a validated call or the reason it is not one. The name comes only from the
 * payload and must be a declared tool (the one a named `tool_choice` forces); the arguments must be
 * an object (a JSON string of one is accepted, a missing one is `{}`) that the tool's schema accepts.
 */
import { randomBytes } from 'node:crypto'
import { parseLenient } from './json-text.js'
import type { ToolPlan } from './plan.js'

export interface ReadCall { name: string; arguments: string }

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** `call_` + 24 random letters and digits. */
export function newCallId (): string {
  let s = 'call_'
  for (const b of randomBytes(24)) s += ALPHABET[b % ALPHABET.length]
  return s
}

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** The call's parts in the shapes models write: `{name, arguments}`, `parameters`/`args`/`input`, `{function: {…}}`. */
function parts (o: Record<string, unknown>): { name: unknown; args: unknown } {
  const inner = isObject(o.function) ? o.function : o
  const name = inner.name ?? o.name
  const args = inner.arguments ?? inner.parameters ?? inner.args ?? inner.input ?? o.arguments
  return { name, args }
}

export function readCall (json: string, plan: ToolPlan): { call: ReadCall } | { problem: string } {
  const parsed = parseLenient(json)
  if (!parsed || !isObject(parsed.value)) return { problem: 'the text between the markers is not a JSON object' }
  const { name, args: raw } = parts(parsed.value)
  if (typeof name !== 'string' || !name) return { problem: 'the call has no "name"' }
  const tool = plan.tools.find((t) => t.name === name)
  if (!tool) return { problem: `\`${name.slice(0, 100)}\` is not one of the declared tools (${plan.tools.map((t) => t.name).join(', ')})` }
  if (typeof plan.choice === 'object' && plan.choice.name !== name) return { problem: `the tool to call is \`${plan.choice.name}\`, not \`${name}\`` }
  let args: unknown = raw ?? {}
  if (typeof args === 'string') {
    const inner = args.trim() === '' ? { value: {} } : parseLenient(args)
    args = inner?.value
  }
  if (!isObject(args)) return { problem: `the "arguments" of \`${name}\` are not a JSON object` }
  const problems = tool.check(args)
  if (problems.length > 0) return { problem: `the arguments of \`${name}\` do not match its parameters: ${problems.join('; ')}` }
  return { call: { name, arguments: JSON.stringify(args) } }
}
