/**
 * The tool plan: what a request's `tools`/`tool_choice`/`parallel_tool_calls` (or the legacy
 * `functions`/`function_call`) ask of the model, checked and compiled once per request. Bad tool
 * definitions are 400s naming the field. No plan (`undefined`) means no tool block at all: no tools,
 * or `tool_choice: "none"`.
 */
import { InvalidRequestError, UnsupportedParameterError, clip } from '../errors.js'
import type { ChatRequest } from '../schemas.js'
import { MarkerSet, type ToolMarkers } from './markers.js'
import { SchemaCompiler, type Check } from './schema.js'

export interface ToolDef {
  name: string
  description?: string
  /** The declared parameters schema (`{type: "object"}` when none was given). */
  parameters: Record<string, unknown>
  /** Problems of an arguments object against `parameters` (none when it is valid). */
  check: Check
}

/** `auto`: the model may call; `required`: it must call one of the tools; `{name}`: it must call that one. */
export type ToolChoice = 'auto' | 'required' | { name: string }

export interface ToolPlan {
  tools: ToolDef[]
  choice: ToolChoice
  /** Several calls in one answer are allowed (`parallel_tool_calls`, default true; legacy functions: false). */
  parallel: boolean
  /** The request used the legacy `functions`: the OpenAI face answers with `function_call`. */
  legacy: boolean
  markers: MarkerSet
}

/** Whether the plan forces a call (`required` or a named tool). */
export function forced (plan: ToolPlan): boolean {
  return plan.choice !== 'auto'
}

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/

interface FunctionLike { name?: unknown; description?: unknown; parameters?: unknown }

function definition (f: FunctionLike, at: string, compiler: SchemaCompiler): ToolDef {
  if (typeof f.name !== 'string' || !NAME.test(f.name)) {
    throw new InvalidRequestError(`${at}.name must be 1 to 128 letters, digits, \`_\`, \`-\`, \`.\` or \`:\` (got \`${clip(f.name)}\`)`, `${at}.name`)
  }
  const parameters = (f.parameters ?? { type: 'object', properties: {} }) as Record<string, unknown>
  if (parameters.type !== undefined && parameters.type !== 'object') {
    throw new InvalidRequestError(`${at}.parameters must describe an object (\`type: "object"\`)`, `${at}.parameters`)
  }
  const compiled = compiler.compile(parameters)
  if ('error' in compiled) throw new InvalidRequestError(`${at}.parameters is not a usable JSON schema: ${clip(compiled.error, 200)}`, `${at}.parameters`)
  const def: ToolDef = { name: f.name, parameters, check: compiled.check }
  if (typeof f.description === 'string' && f.description) def.description = f.description
  return def
}

function definitions (req: ChatRequest, compiler: SchemaCompiler): { defs: ToolDef[]; legacy: boolean } {
  const tools = req.tools ?? []
  const functions = req.functions ?? []
  if (tools.length > 0 && functions.length > 0) throw new InvalidRequestError('Send either `tools` or the legacy `functions`, not both', 'functions')
  const defs: ToolDef[] = []
  const seen = new Map<string, number>()
  const add = (def: ToolDef, at: string): void => {
    if (seen.has(def.name)) throw new InvalidRequestError(`Tool name \`${clip(def.name)}\` is declared twice`, `${at}.name`)
    seen.set(def.name, defs.length)
    defs.push(def)
  }
  tools.forEach((t, i) => {
    if (t.type !== 'function') {
      throw new UnsupportedParameterError(`tools[${i}].type`, `Tool type \`${clip(t.type)}\` is not supported; only \`function\` tools are`)
    }
    if (!t.function) throw new InvalidRequestError(`tools[${i}].function is required for a function tool`, `tools[${i}].function`)
    add(definition(t.function, `tools[${i}].function`, compiler), `tools[${i}].function`)
  })
  functions.forEach((f, i) => add(definition(f, `functions[${i}]`, compiler), `functions[${i}]`))
  return { defs, legacy: functions.length > 0 }
}

type RawChoice = ChatRequest['tool_choice'] | ChatRequest['function_call']

/** The requested choice: `none`, or a ToolChoice plus the tools it allows (`allowed_tools`). */
function choiceOf (raw: RawChoice, param: string, names: Set<string>): { choice: ToolChoice | 'none'; allowed?: string[] } {
  if (raw === undefined || raw === null || raw === 'auto') return { choice: 'auto' }
  if (raw === 'none') return { choice: 'none' }
  if (raw === 'required' && param === 'tool_choice') return { choice: 'required' }
  const named = (name: unknown, at: string): { choice: ToolChoice } => {
    if (typeof name !== 'string') throw new InvalidRequestError(`${at} must name a function`, at)
    if (!names.has(name)) throw new InvalidRequestError(`${param} names \`${clip(name)}\`, which is not among the declared tools`, at)
    return { choice: { name } }
  }
  if (typeof raw === 'object') {
    const o = raw as Record<string, unknown>
    if (param === 'function_call') return named(o.name, 'function_call.name')
    if (o.type === 'function') return named((o.function as { name?: unknown } | undefined)?.name, 'tool_choice.function.name')
    if (o.type === 'allowed_tools') return allowedTools(o.allowed_tools, names)
  }
  const shown = typeof raw === 'object' ? `type ${clip((raw as { type?: unknown }).type)}` : clip(raw)
  throw new InvalidRequestError(`${param} \`${shown}\` is not supported; use "none", "auto", "required" or a named function`, param)
}

function allowedTools (raw: unknown, names: Set<string>): { choice: ToolChoice; allowed: string[] } {
  const a = (raw ?? {}) as { mode?: unknown; tools?: unknown }
  if (a.mode !== 'auto' && a.mode !== 'required') throw new InvalidRequestError('tool_choice.allowed_tools.mode must be "auto" or "required"', 'tool_choice.allowed_tools.mode')
  if (!Array.isArray(a.tools) || a.tools.length === 0) throw new InvalidRequestError('tool_choice.allowed_tools.tools must list at least one tool', 'tool_choice.allowed_tools.tools')
  const allowed = a.tools.map((t, i) => {
    const name = (t as { function?: { name?: unknown }; name?: unknown } | null)?.function?.name ?? (t as { name?: unknown } | null)?.name
    if (typeof name !== 'string' || !names.has(name)) {
      throw new InvalidRequestError(`tool_choice.allowed_tools.tools[${i}] is not among the declared tools`, `tool_choice.allowed_tools.tools[${i}]`)
    }
    return name
  })
  return { choice: a.mode, allowed }
}

/** The plan for a request, or undefined when no tool block is to be sent. Throws 400s naming the field. */
export function toolPlan (req: ChatRequest, markers: ToolMarkers | MarkerSet, compiler = new SchemaCompiler()): ToolPlan | undefined {
  const { defs, legacy } = definitions(req, compiler)
  // The legacy `function_call` goes with `functions`; either spelling is read when only it is sent.
  const given = (v: RawChoice): boolean => v !== undefined && v !== null
  const legacyChoice = legacy ? given(req.function_call) || !given(req.tool_choice) : !given(req.tool_choice) && given(req.function_call)
  const param = legacyChoice ? 'function_call' : 'tool_choice'
  const raw = legacyChoice ? req.function_call : req.tool_choice
  if (defs.length === 0) {
    if (raw === undefined || raw === null || raw === 'none' || raw === 'auto') return undefined
    throw new InvalidRequestError(`${param} asks for a tool call, but the request declares no tools`, param)
  }
  const { choice, allowed } = choiceOf(raw, param, new Set(defs.map((d) => d.name)))
  if (choice === 'none') return undefined
  return {
    tools: allowed ? defs.filter((d) => allowed.includes(d.name)) : defs,
    choice,
    parallel: !legacy && req.parallel_tool_calls !== false,
    legacy,
    markers: markers instanceof MarkerSet ? markers : new MarkerSet(markers),
  }
}
