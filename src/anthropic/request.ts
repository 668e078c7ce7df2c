/**
 * Anthropic Messages request → the OpenAI Chat Completions request the shared `prepareChat` takes.
 * - `system` (a string or text blocks) becomes one system message;
 * - user turns: `text` blocks are the message text, `image`/`document` blocks become the OpenAI
 *   content parts that carry the same data, `tool_result` blocks become `tool` messages (placed
 *   before the turn's text, as the Chat Completions order wants them);
 * - assistant turns: `text` blocks are the content, `tool_use` blocks become `tool_calls` (the input
 *   object as a JSON string); `thinking` and `redacted_thinking` blocks are dropped (the web chat
 *   cannot be given its own reasoning back);
 * - tools: client tools become function tools; Anthropic's server tools (a `type` such as
 *   `web_search_20250305`) are left out, never refused;
 * - `thinking: {type: "enabled" | "adaptive"}` turns thinking on, `{type: "disabled"}` off
 *   (absent: the model name decides, as on the OpenAI face).
 * Blocks of other kinds (server tool results, search results, …) carry nothing the upstream can use
 * and are left out.
 */
import { InvalidRequestError, clip } from '../errors.js'
import type { ChatMessage, ChatRequest } from '../schemas.js'
import type { AnthropicBlock, CountTokensRequest, MessagesRequest } from './schemas.js'

type Part = Exclude<ChatMessage['content'], string | null | undefined>[number]

/** Text of a `tool_result` content or a `system` value: a string or blocks (their `text` joined). */
function blocksText (content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content
    .filter((b): b is { type: string; text: string } => b?.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('\n')
}

/** An image or document block as an OpenAI content part (the media seam takes it from there). */
function mediaPart (b: AnthropicBlock, at: string): Part | undefined {
  const src = b.source as { type: string; media_type?: unknown; data?: unknown; url?: unknown; text?: unknown } | undefined
  if (!src) throw new InvalidRequestError(`${at}.source is required for ${b.type} blocks`, `${at}.source`)
  if (b.type === 'document' && src.type === 'text' && typeof src.data === 'string') return { type: 'text', text: src.data }
  let url: string | undefined
  if (src.type === 'base64' && typeof src.data === 'string' && typeof src.media_type === 'string') url = `data:${src.media_type};base64,${src.data}`
  else if (src.type === 'url' && typeof src.url === 'string') url = src.url
  if (url === undefined) throw new InvalidRequestError(`${at}.source must be {type: "base64", media_type, data} or {type: "url", url}`, `${at}.source`)
  return b.type === 'image' ? { type: 'image_url', image_url: { url } } : { type: 'file', file: { file_data: url } }
}

function toolResult (b: AnthropicBlock, at: string): ChatMessage {
  if (typeof b.tool_use_id !== 'string') throw new InvalidRequestError(`${at}.tool_use_id is required`, `${at}.tool_use_id`)
  const text = blocksText(b.content)
  return { role: 'tool', tool_call_id: b.tool_use_id, content: b.is_error === true ? `Error: ${text}` : text }
}

function toolUse (b: AnthropicBlock, at: string): NonNullable<ChatMessage['tool_calls']>[number] {
  if (typeof b.id !== 'string' || typeof b.name !== 'string') throw new InvalidRequestError(`${at} needs \`id\` and \`name\``, at)
  return { id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }
}

/** One Anthropic turn as one or more OpenAI messages. */
function turnMessages (role: string, content: string | AnthropicBlock[], i: number): ChatMessage[] {
  if (role !== 'user' && role !== 'assistant') {
    throw new InvalidRequestError(`messages[${i}].role \`${clip(role)}\` must be "user" or "assistant" (system text goes in the top-level \`system\`)`, `messages[${i}].role`)
  }
  if (typeof content === 'string') return [{ role, content }]
  const parts: Part[] = []
  const tools: ChatMessage[] = []
  const calls: NonNullable<ChatMessage['tool_calls']> = []
  content.forEach((b, j) => {
    const at = `messages[${i}].content[${j}]`
    switch (b.type) {
      case 'text':
        if (typeof b.text !== 'string') throw new InvalidRequestError(`${at}.text must be a string`, `${at}.text`)
        parts.push({ type: 'text', text: b.text })
        return
      case 'image':
      case 'document':
        parts.push(mediaPart(b, at)!)
        return
      case 'tool_result':
        tools.push(toolResult(b, at))
        return
      case 'tool_use':
        calls.push(toolUse(b, at))
        return
      default:
        // thinking, redacted_thinking, server tool blocks, search results: nothing to send upstream.
    }
  })
  const text = parts.every((p) => p.type === 'text') ? parts.map((p) => p.text!).join('\n') : parts
  if (role === 'assistant') {
    return [{ role, content: typeof text === 'string' ? text : parts, ...(calls.length ? { tool_calls: calls } : {}) }]
  }
  const hasText = typeof text === 'string' ? text.length > 0 : true
  return [...tools, ...(hasText || tools.length === 0 ? [{ role, content: text }] : [])]
}

/** Anthropic client tools as OpenAI function tools; server tools (a versioned `type`) are left out. */
function tools (list: MessagesRequest['tools']): ChatRequest['tools'] {
  if (!Array.isArray(list)) return undefined
  const out = list
    .filter((t) => t.type === undefined || t.type === null || t.type === 'custom')
    .map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object', properties: {} } },
    }))
  return out.length ? out : undefined
}

function toolChoice (tc: MessagesRequest['tool_choice']): { tool_choice?: ChatRequest['tool_choice'] | { type: 'function'; function: { name: string } }; parallel_tool_calls?: boolean } {
  if (!tc) return {}
  const parallel = tc.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {}
  switch (tc.type) {
    case 'auto': return { tool_choice: 'auto', ...parallel }
    case 'none': return { tool_choice: 'none' }
    case 'any': return { tool_choice: 'required', ...parallel }
    case 'tool':
      if (typeof tc.name !== 'string') throw new InvalidRequestError('tool_choice.name is required when tool_choice.type is "tool"', 'tool_choice.name')
      return { tool_choice: { type: 'function', function: { name: tc.name } }, ...parallel }
    default:
      throw new InvalidRequestError(`tool_choice.type \`${clip(tc.type)}\` is not one of auto, any, tool, none`, 'tool_choice.type')
  }
}

/** `thinking` → `reasoning_effort` (which `prepareChat` turns into the thinking override). */
function effort (thinking: MessagesRequest['thinking']): string | undefined {
  if (!thinking) return undefined
  if (thinking.type === 'disabled') return 'none'
  if (thinking.type === 'enabled' || thinking.type === 'adaptive') return 'medium'
  throw new InvalidRequestError(`thinking.type \`${clip(thinking.type)}\` is not one of enabled, adaptive, disabled`, 'thinking.type')
}

/** The conversation part (shared by `/v1/messages` and `count_tokens`). */
function conversation (req: CountTokensRequest): Pick<ChatRequest, 'messages' | 'tools' | 'tool_choice' | 'parallel_tool_calls' | 'reasoning_effort'> {
  const messages: ChatMessage[] = []
  const system = blocksText(req.system)
  if (system) messages.push({ role: 'system', content: system })
  req.messages.forEach((m, i) => { messages.push(...turnMessages(m.role, m.content, i)) })
  const t = tools(req.tools)
  const reasoning = effort(req.thinking)
  return {
    messages,
    ...(t ? { tools: t, ...toolChoice(req.tool_choice) } : {}),
    ...(reasoning ? { reasoning_effort: reasoning } : {}),
  }
}

/** The Chat Completions request `prepareChat` takes for this Messages request. */
export function toChatRequest (req: MessagesRequest): ChatRequest {
  const stop = req.stop_sequences ?? []
  if (stop.length > 4) throw new InvalidRequestError('stop_sequences: at most 4 stop sequences are supported', 'stop_sequences')
  if (req.max_tokens !== undefined && req.max_tokens < 1) throw new InvalidRequestError('max_tokens must be a positive integer', 'max_tokens')
  return {
    model: req.model,
    ...conversation(req),
    stream: req.stream === true,
    ...(stop.length ? { stop } : {}),
    ...(req.max_tokens !== undefined ? { max_tokens: req.max_tokens } : {}),
    ...(typeof req.temperature === 'number' ? { temperature: req.temperature } : {}),
    ...(typeof req.top_p === 'number' ? { top_p: req.top_p } : {}),
    ...(typeof req.metadata?.user_id === 'string' ? { user: req.metadata.user_id } : {}),
  }
}

/** The Chat Completions request whose prompt `count_tokens` estimates. */
export function countTokensChatRequest (req: CountTokensRequest): ChatRequest {
  return { model: req.model, ...conversation(req) }
}
