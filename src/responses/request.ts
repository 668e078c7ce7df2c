/**
 * Responses API request → the OpenAI Chat Completions request the shared `prepareChat` takes.
 * The client resends the transcript, or names the answer it follows (`previous_response_id`: the
 * face continues that answer's upstream chat, `src/turn/previous.ts`, and `input` is only the new
 * turn); the `conversation` object is refused.
 * - `instructions` becomes the system message; `input` is a string (one user message) or items:
 *   messages (`input_text`/`output_text` parts, images and files as the OpenAI parts that carry
 *   them), `function_call`/`custom_tool_call` (assistant `tool_calls`), `function_call_output`/
 *   `custom_tool_call_output` (`tool` messages); `reasoning` items and the items of tools the web
 *   chat cannot serve (web search, MCP, tool search, local shell, …) are left out;
 * - function tools pass through; free-form `custom` tools (Codex's `apply_patch`) are shown as
 *   function tools with one string parameter `input`; other tool kinds are left out;
 * - `text.format` → `response_format`, `reasoning.effort` → `reasoning_effort`,
 *   `max_output_tokens` → `max_tokens`.
 */
import { InvalidRequestError, UnsupportedParameterError, clip } from '../errors.js'
import type { ChatMessage, ChatRequest } from '../schemas.js'
import { customToolParameters } from './tools.js'
import type { InputItem, ResponsesRequest, ResponsesTool } from './schemas.js'

type Part = Exclude<ChatMessage['content'], string | null | undefined>[number]
type ToolCall = NonNullable<ChatMessage['tool_calls']>[number]

/** What the face needs besides the chat request: which tool names are free-form (`custom`). */
export interface ResponsesChat {
  chat: ChatRequest
  customTools: Set<string>
}

const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer'])

function str (v: unknown, at: string): string {
  if (typeof v !== 'string') throw new InvalidRequestError(`${at} must be a string`, at)
  return v
}

/** Message content parts as OpenAI parts (text kinds become `text`). */
function parts (content: unknown, at: string): string | Part[] {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) throw new InvalidRequestError(`${at} must be a string or an array of content parts`, at)
  const out: Part[] = content.map((p: Record<string, unknown>, j): Part => {
    const here = `${at}[${j}]`
    switch (p?.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        return { type: 'text', text: str(p.text, `${here}.text`) }
      case 'refusal':
        return { type: 'text', text: str(p.refusal, `${here}.refusal`) }
      case 'input_image':
        return { type: 'image_url', image_url: { url: str(p.image_url ?? p.file_id, `${here}.image_url`) } }
      case 'input_file':
        return { type: 'file', file: { ...(typeof p.file_data === 'string' ? { file_data: p.file_data } : {}), ...(typeof p.file_id === 'string' ? { file_id: p.file_id } : {}), ...(typeof p.filename === 'string' ? { filename: p.filename } : {}) } }
      default:
        throw new InvalidRequestError(`${here} has an unknown content part type \`${clip(p?.type)}\``, `${here}.type`)
    }
  })
  return out.every((p) => p.type === 'text') ? out.map((p) => p.text!).join('\n') : out
}

/** A tool output (a string, or parts whose text is joined). */
function outputText (output: unknown, at: string): string {
  if (typeof output === 'string') return output
  if (Array.isArray(output)) {
    return output.filter((p) => typeof p?.text === 'string').map((p) => p.text as string).join('\n')
  }
  throw new InvalidRequestError(`${at} must be a string or an array of content parts`, at)
}

/** Append a tool call to the assistant message it belongs to (the last one, unless a user or tool turn followed). */
function addCall (messages: ChatMessage[], call: ToolCall): void {
  const last = messages[messages.length - 1]
  if (last?.role === 'assistant') {
    last.tool_calls = [...(last.tool_calls ?? []), call]
    return
  }
  messages.push({ role: 'assistant', content: null, tool_calls: [call] })
}

function item (messages: ChatMessage[], it: InputItem, i: number): void {
  const at = `input[${i}]`
  const raw = it as Record<string, unknown>
  const type = it.type ?? (it.role !== undefined ? 'message' : undefined)
  switch (type) {
    case 'message': {
      const role = str(it.role, `${at}.role`)
      if (!MESSAGE_ROLES.has(role)) throw new InvalidRequestError(`${at}.role \`${clip(role)}\` is not one of ${[...MESSAGE_ROLES].join(', ')}`, `${at}.role`)
      messages.push({ role, content: parts(raw.content, `${at}.content`) })
      return
    }
    case 'function_call':
      addCall(messages, { id: str(raw.call_id, `${at}.call_id`), type: 'function', function: { name: str(raw.name, `${at}.name`), arguments: str(raw.arguments, `${at}.arguments`) } })
      return
    case 'custom_tool_call':
      addCall(messages, { id: str(raw.call_id, `${at}.call_id`), type: 'function', function: { name: str(raw.name, `${at}.name`), arguments: JSON.stringify({ input: str(raw.input, `${at}.input`) }) } })
      return
    case 'function_call_output':
    case 'custom_tool_call_output':
      messages.push({ role: 'tool', tool_call_id: str(raw.call_id, `${at}.call_id`), content: outputText(raw.output, `${at}.output`) })
      return
    case undefined:
      throw new InvalidRequestError(`${at} needs a \`type\` (or a \`role\` for a message)`, `${at}.type`)
    default:
      // reasoning (the upstream cannot take its own thinking back), and the items of tools the web
      // chat cannot serve: web_search_call, local_shell_call, mcp_*, tool_search_*, compaction, …
  }
}

/** Function tools pass through; custom tools become one-string-parameter functions; others are left out. */
function tools (list: ResponsesTool[] | null | undefined): { tools: NonNullable<ChatRequest['tools']>; custom: Set<string> } {
  const out: NonNullable<ChatRequest['tools']> = []
  const custom = new Set<string>()
  ;(list ?? []).forEach((t, i) => {
    if (t.type !== 'function' && t.type !== 'custom') return
    const name = str(t.name, `tools[${i}].name`)
    const description = typeof t.description === 'string' ? { description: t.description } : {}
    if (t.type === 'function') {
      out.push({ type: 'function', function: { name, ...description, parameters: t.parameters ?? { type: 'object', properties: {} }, ...(typeof t.strict === 'boolean' ? { strict: t.strict } : {}) } })
    } else {
      custom.add(name)
      out.push({ type: 'function', function: { name, ...description, parameters: customToolParameters(t.format) } })
    }
  })
  return { tools: out, custom }
}

type ChatToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } } | undefined

function toolChoice (tc: ResponsesRequest['tool_choice']): ChatToolChoice {
  if (tc === undefined || tc === null) return undefined
  if (typeof tc === 'string') {
    if (tc === 'auto' || tc === 'none' || tc === 'required') return tc
    throw new InvalidRequestError(`tool_choice \`${clip(tc)}\` is not one of auto, none, required`, 'tool_choice')
  }
  const o = tc as { type: string; name?: unknown; mode?: unknown }
  if (o.type === 'function' || o.type === 'custom') return { type: 'function', function: { name: str(o.name, 'tool_choice.name') } }
  if (o.type === 'allowed_tools') return o.mode === 'required' ? 'required' : 'auto'
  // A hosted tool (web_search, file_search, mcp, …) the gateway leaves out: let the model decide.
  return 'auto'
}

function responseFormat (format: NonNullable<ResponsesRequest['text']>['format']): ChatRequest['response_format'] {
  if (!format || format.type === 'text') return undefined
  if (format.type === 'json_object') return { type: 'json_object' }
  if (format.type === 'json_schema') {
    return {
      type: 'json_schema',
      json_schema: {
        name: format.name ?? 'response',
        ...(format.description !== undefined ? { description: format.description } : {}),
        ...(format.schema !== undefined ? { schema: format.schema } : {}),
        ...(typeof format.strict === 'boolean' ? { strict: format.strict } : {}),
      },
    }
  }
  throw new InvalidRequestError(`text.format.type \`${clip(format.type)}\` is not one of text, json_object, json_schema`, 'text.format.type')
}

/** The Chat Completions request `prepareChat` takes for this Responses request. */
export function toChatRequest (req: ResponsesRequest): ResponsesChat {
  if (req.conversation !== undefined && req.conversation !== null) {
    throw new UnsupportedParameterError('conversation', 'conversation is not supported: send the whole conversation in `input`, or `previous_response_id`')
  }
  const messages: ChatMessage[] = []
  if (req.instructions) messages.push({ role: 'system', content: req.instructions })
  if (typeof req.input === 'string') messages.push({ role: 'user', content: req.input })
  else req.input.forEach((it, i) => { item(messages, it, i) })
  if (messages.length === 0) throw new InvalidRequestError('input contains no messages', 'input')
  const t = tools(req.tools)
  const choice = toolChoice(req.tool_choice)
  const rf = responseFormat(req.text?.format)
  const effort = req.reasoning?.effort
  const chat: ChatRequest = {
    model: req.model,
    messages,
    stream: req.stream === true,
    ...(t.tools.length ? { tools: t.tools, ...(choice !== undefined ? { tool_choice: choice } : {}) } : {}),
    ...(t.tools.length && typeof req.parallel_tool_calls === 'boolean' ? { parallel_tool_calls: req.parallel_tool_calls } : {}),
    ...(rf ? { response_format: rf } : {}),
    ...(typeof effort === 'string' ? { reasoning_effort: effort } : {}),
    ...(typeof req.max_output_tokens === 'number' ? { max_tokens: req.max_output_tokens } : {}),
    ...(typeof req.temperature === 'number' ? { temperature: req.temperature } : {}),
    ...(typeof req.top_p === 'number' ? { top_p: req.top_p } : {}),
    ...(typeof req.user === 'string' ? { user: req.user } : {}),
  }
  return { chat, customTools: t.custom }
}
