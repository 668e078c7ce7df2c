/**
 * OpenAI chat request policy: what is honoured, what is refused with a clear 400, and how the
 * conversation is folded into the single message the upstream accepts per request.
 */
import { InvalidRequestError, UnsupportedParameterError, clip } from '../errors.js'
import type { ChatMessage, ChatRequest } from '../schemas.js'
import type { Attachment } from '../media/attachment.js'
import { isMediaPart, mediaPartText } from '../media/parts.js'
import type { ResolvedModel } from '../models.js'
import { DEFAULT_TOOL_MARKERS, MarkerSet, type ToolMarkers } from '../tools/markers.js'
import { outputBlock, outputPlan, type OutputPlan } from '../tools/json-output.js'
import { toolPlan, type ToolPlan } from '../tools/plan.js'
import { foldedCall, foldedResult, toolBlock } from '../tools/prompt.js'
import { SchemaCompiler } from '../tools/schema.js'

/** The types come from the route schema (`src/schemas.ts`), which has already checked every known field's type. */
export type { ChatMessage, ChatRequest } from '../schemas.js'

/** The request after validation, in the terms the gateway works with. */
export interface PreparedChat {
  prompt: string
  stream: boolean
  includeUsage: boolean
  stop: string[]
  maxTokens: number | undefined
  /** `true`/`false` when `reasoning_effort` decides thinking, `undefined` when the model name does. */
  thinkingOverride: boolean | undefined
  /** Media to upload for the identity that serves the turn (resolved after validation). */
  attachments: Attachment[]
  /** Emulated tool calling; undefined without tools or with `tool_choice: "none"` (then no tool block is sent). */
  tools?: ToolPlan
  /** A JSON `response_format` (`json_object` or `json_schema`). */
  output?: OutputPlan
}

/** What `prepareChat` takes from the gateway's configuration. */
export interface ChatOptions {
  /** `TOOL_CALL_MARKERS` (default `[TOOL CALL]` / `[END TOOL CALL]`). */
  markers?: ToolMarkers
  /** The gateway instance's cache of compiled schemas (a fresh one per call when absent). */
  schemas?: SchemaCompiler
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function'])
/** Other APIs' media part shapes: refused with a pointer to the Chat Completions ones (`src/media/parts.ts`). */
const UNSUPPORTED_PARTS: Record<string, string> = {
  image: 'Send images as `image_url` parts',
  input_image: 'Send images as `image_url` parts',
  input_file: 'Send files as `file` parts with `file_data`',
}

/**
 * Text of a message's `content`: a string, `null`, or an array of text (or refusal) parts; media parts
 * leave a marker (`[image]`, …) where they stood, their bytes travel as attachments (`src/media/`).
 */
export function contentText (content: unknown, param: string): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) throw new InvalidRequestError(`${param} must be a string or an array of content parts`, param)
  const out: string[] = []
  content.forEach((part, j) => {
    const p = part as Record<string, unknown> | null
    const type = p && typeof p === 'object' ? p.type : undefined
    const at = `${param}[${j}]`
    if (type === 'text' || type === 'input_text') {
      if (typeof p!.text !== 'string') throw new InvalidRequestError(`${at}.text must be a string`, `${at}.text`)
      out.push(p!.text)
    } else if (type === 'refusal' && typeof p!.refusal === 'string') {
      out.push(p!.refusal)
    } else if (isMediaPart(type)) {
      out.push(mediaPartText(p!, at))
    } else if (typeof type === 'string' && UNSUPPORTED_PARTS[type]) {
      throw new UnsupportedParameterError(at, `${UNSUPPORTED_PARTS[type]} (content part type \`${clip(type)}\`)`)
    } else {
      throw new InvalidRequestError(`${at} has an unknown content part type \`${clip(type)}\``, `${at}.type`)
    }
  })
  return out.join('\n')
}

function positiveInt (v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidRequestError(`${param} must be a positive integer`, param)
  return v
}

function stopList (v: unknown): string[] {
  if (v === undefined || v === null) return []
  const list = typeof v === 'string' ? [v] : v
  if (!Array.isArray(list) || list.length > 4 || list.some((s) => typeof s !== 'string')) {
    throw new InvalidRequestError('stop must be a string or an array of up to 4 strings', 'stop')
  }
  return (list as string[]).filter((s) => s.length > 0)
}

/** Validate a chat request and work out what it asks for. Throws 400s that name the field. */
export function prepareChat (req: ChatRequest, o: ChatOptions = {}): PreparedChat {
  const markers = new MarkerSet(o.markers ?? DEFAULT_TOOL_MARKERS)
  const schemas = o.schemas ?? new SchemaCompiler()
  const tools = toolPlan(req, markers, schemas)
  const output = outputPlan(req, schemas)
  if (Array.isArray(req.modalities) && req.modalities.some((m) => m !== 'text')) {
    throw new UnsupportedParameterError('modalities', 'Only the `text` modality is supported')
  }
  if (req.audio !== undefined && req.audio !== null) throw new UnsupportedParameterError('audio', 'Audio output is not supported')
  const n = positiveInt(req.n, 'n')
  if (n !== undefined && n > 1) throw new InvalidRequestError('n > 1 is not supported: the upstream produces one answer per request', 'n')

  req.messages.forEach((m, i) => {
    if (!ROLES.has(m.role)) throw new InvalidRequestError(`messages[${i}].role \`${clip(m.role)}\` is not one of ${[...ROLES].join(', ')}`, `messages[${i}].role`)
    if (m.role === 'user' && (m.content === undefined || m.content === null)) {
      throw new InvalidRequestError(`messages[${i}].content is required for user messages`, `messages[${i}].content`)
    }
  })
  const blocks = [tools && toolBlock(tools), output && outputBlock(output)].filter((b): b is string => b !== undefined)
  const prompt = foldMessages(req.messages, markers, blocks)
  const bare = blocks.length === 0 ? prompt : foldMessages(req.messages, markers)
  if (bare.trim().length === 0) throw new InvalidRequestError('messages contain no text', 'messages')

  const effort = req.reasoning_effort
  let thinkingOverride: boolean | undefined
  if (typeof effort === 'string') thinkingOverride = !(effort === 'none' || effort === 'minimal')

  return {
    prompt,
    stream: req.stream === true,
    includeUsage: req.stream === true && req.stream_options?.include_usage === true,
    stop: stopList(req.stop),
    maxTokens: positiveInt(req.max_completion_tokens, 'max_completion_tokens') ?? positiveInt(req.max_tokens, 'max_tokens'),
    thinkingOverride,
    attachments: [],
    ...(tools ? { tools } : {}),
    ...(output ? { output } : {}),
  }
}

/** Whether the upstream turn runs with thinking on. */
export function thinkingFor (model: ResolvedModel, override: boolean | undefined): boolean {
  if (model.mustThink) return true
  if (!model.capabilities.thinking) return false
  return override ?? model.thinking
}

const LABEL: Record<string, string> = { user: 'User', assistant: 'Assistant', system: 'System', developer: 'System' }

/** The arguments as the model should read them: the JSON value when they are JSON text, else the text. */
function argumentsValue (args: unknown): unknown {
  if (typeof args !== 'string') return args ?? {}
  try {
    return JSON.parse(args)
  } catch {
    return args
  }
}

function callsText (markers: MarkerSet, calls: unknown): string[] {
  if (!Array.isArray(calls)) return []
  return calls.map((c) => {
    const call = (c ?? {}) as { function?: { name?: unknown; arguments?: unknown } }
    return foldedCall(markers, String(call.function?.name ?? 'unknown'), argumentsValue(call.function?.arguments))
  })
}

/**
 * Fold an OpenAI conversation into one upstream message (the format is documented in the README).
 * `blocks` (the tool and output blocks) are system text after the conversation's own.
 * - system/developer text plus exactly one user message: the system text, a blank line, then the
 *   user text unchanged (just the user text when there is no system text);
 * - anything longer: role-labelled blocks (`[System]`, `[User]`, `[Assistant]`), system first,
 *   separated by blank lines; assistant tool calls are written in the tool-call marker format
 *   (`[TOOL CALL]`, one `{"name", "arguments"}` object, `[END TOOL CALL]`) after the assistant's
 *   text; tool results are `[TOOL RESULT <name> <call id>]` … `[END TOOL RESULT]` blocks, with any
 *   marker text inside neutralised; `reasoning_content` is dropped.
 */
export function foldMessages (messages: ChatMessage[], markers = new MarkerSet(DEFAULT_TOOL_MARKERS), blocks: string[] = []): string {
  const system: string[] = []
  const rest: Array<{ m: ChatMessage; i: number }> = []
  messages.forEach((m, i) => {
    if (m.role === 'system' || m.role === 'developer') {
      const t = contentText(m.content, `messages[${i}].content`)
      if (t) system.push(t)
    } else {
      rest.push({ m, i })
    }
  })
  const sys = [...system, ...blocks].join('\n\n')
  if (rest.length === 1 && rest[0]!.m.role === 'user') {
    const user = contentText(rest[0]!.m.content, `messages[${rest[0]!.i}].content`)
    return sys ? `${sys}\n\n${user}` : user
  }
  const names = new Map<string, string>()
  const out: string[] = []
  if (sys) out.push(`[System]\n${sys}`)
  for (const { m, i } of rest) {
    const text = contentText(m.content, `messages[${i}].content`)
    if (m.role === 'assistant') {
      if (Array.isArray(m.tool_calls)) {
        for (const c of m.tool_calls as Array<{ id?: unknown; function?: { name?: unknown } }>) {
          if (typeof c?.id === 'string' && typeof c.function?.name === 'string') names.set(c.id, c.function.name)
        }
      }
      const legacy = m.function_call ? [{ function: m.function_call }] : []
      const parts = [text, ...callsText(markers, m.tool_calls), ...callsText(markers, legacy)].filter((s) => s.length > 0)
      out.push(`[Assistant]\n${parts.join('\n')}`)
    } else if (m.role === 'tool' || m.role === 'function') {
      const id = typeof m.tool_call_id === 'string' ? m.tool_call_id : ''
      const name = (typeof m.name === 'string' ? m.name : undefined) ?? names.get(id) ?? 'unknown'
      out.push(foldedResult(markers, name, id, text))
    } else {
      out.push(`[${LABEL[m.role]}]\n${text}`)
    }
  }
  return out.join('\n\n')
}
