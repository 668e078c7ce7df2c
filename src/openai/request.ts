/**
 * OpenAI chat request policy: what is honoured, what is refused with a clear 400, and how the
 * conversation is folded into the single message the upstream accepts per request.
 */
import { InvalidRequestError, UnsupportedParameterError, clip } from '../errors.js'
import type { ChatMessage, ChatRequest } from '../schemas.js'
import type { Attachment } from '../media/attachment.js'
import type { ResolvedModel } from '../models.js'

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
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function'])
const UNSUPPORTED_PARTS: Record<string, string> = {
  image_url: 'Image inputs are not supported yet',
  image: 'Image inputs are not supported yet',
  input_image: 'Image inputs are not supported yet',
  input_audio: 'Audio inputs are not supported yet',
  file: 'File inputs are not supported yet',
  input_file: 'File inputs are not supported yet',
  video_url: 'Video inputs are not supported yet',
}

function nonEmptyList (v: unknown): boolean {
  return Array.isArray(v) && v.length > 0
}

/** Text of a message's `content`: a string, `null`, or an array of text (or refusal) parts. */
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
export function prepareChat (req: ChatRequest): PreparedChat {
  if (nonEmptyList(req.tools)) throw new UnsupportedParameterError('tools', 'Tool calling is not supported yet; send the request without `tools`')
  if (nonEmptyList(req.functions)) throw new UnsupportedParameterError('functions', 'Function calling is not supported yet; send the request without `functions`')
  const tc = req.tool_choice
  if (tc === 'required' || (tc !== null && typeof tc === 'object')) {
    throw new UnsupportedParameterError('tool_choice', 'Tool calling is not supported yet; only `tool_choice: "none"` or `"auto"` is accepted')
  }
  const rf = req.response_format
  if (rf !== undefined && rf !== null && rf.type !== 'text') {
    throw new UnsupportedParameterError('response_format', `response_format \`${clip(rf.type)}\` is not supported yet; only \`text\` is`)
  }
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
  const prompt = foldMessages(req.messages)
  if (prompt.trim().length === 0) throw new InvalidRequestError('messages contain no text', 'messages')

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
  }
}

/** Whether the upstream turn runs with thinking on. */
export function thinkingFor (model: ResolvedModel, override: boolean | undefined): boolean {
  if (model.mustThink) return true
  if (!model.capabilities.thinking) return false
  return override ?? model.thinking
}

const LABEL: Record<string, string> = { user: 'User', assistant: 'Assistant', system: 'System', developer: 'System' }

function toolCallsText (calls: unknown): string[] {
  if (!Array.isArray(calls)) return []
  return calls.map((c) => {
    const call = (c ?? {}) as { id?: unknown; function?: { name?: unknown; arguments?: unknown } }
    const args = typeof call.function?.arguments === 'string' ? call.function.arguments : JSON.stringify(call.function?.arguments ?? {})
    return `[Tool call ${String(call.function?.name ?? 'unknown')} id=${String(call.id ?? '')}]\n${args}`
  })
}

/**
 * Fold an OpenAI conversation into one upstream message (the format is documented in the README):
 * - system/developer text plus exactly one user message: the system text, a blank line, then the
 *   user text unchanged (just the user text when there is no system text);
 * - anything longer: role-labelled blocks (`[System]`, `[User]`, `[Assistant]`,
 *   `[Tool result NAME id=ID]`), system first, separated by blank lines; assistant tool calls are
 *   written as `[Tool call NAME id=ID]` followed by the arguments; `reasoning_content` is dropped.
 */
export function foldMessages (messages: ChatMessage[]): string {
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
  const sys = system.join('\n\n')
  if (rest.length === 1 && rest[0]!.m.role === 'user') {
    const user = contentText(rest[0]!.m.content, `messages[${rest[0]!.i}].content`)
    return sys ? `${sys}\n\n${user}` : user
  }
  const names = new Map<string, string>()
  const blocks: string[] = []
  if (sys) blocks.push(`[System]\n${sys}`)
  for (const { m, i } of rest) {
    const text = contentText(m.content, `messages[${i}].content`)
    if (m.role === 'assistant') {
      if (Array.isArray(m.tool_calls)) {
        for (const c of m.tool_calls as Array<{ id?: unknown; function?: { name?: unknown } }>) {
          if (typeof c?.id === 'string' && typeof c.function?.name === 'string') names.set(c.id, c.function.name)
        }
      }
      const legacy = m.function_call ? [m.function_call].map((f) => ({ id: '', function: f })) : []
      const parts = [text, ...toolCallsText(m.tool_calls), ...toolCallsText(legacy)].filter((s) => s.length > 0)
      blocks.push(`[Assistant]\n${parts.join('\n')}`)
    } else if (m.role === 'tool' || m.role === 'function') {
      const id = typeof m.tool_call_id === 'string' ? m.tool_call_id : ''
      const name = (typeof m.name === 'string' ? m.name : undefined) ?? names.get(id) ?? 'unknown'
      blocks.push(`[Tool result ${name}${id ? ` id=${id}` : ''}]\n${text}`)
    } else {
      blocks.push(`[${LABEL[m.role]}]\n${text}`)
    }
  }
  return blocks.join('\n\n')
}
