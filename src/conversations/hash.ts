/**
 * The conversation key: a hash of a conversation as the client sends it, normalised so that what
 * clients change on the way back does not matter, and of the caller, so that one caller can never
 * continue another's upstream chat. What is hashed (README "Conversations"): the caller, the
 * requested model name, the declared tool names, and per message its role (system and developer
 * are one), its text (think tags removed, `reasoning_content` ignored, `null` and `""` the same,
 * outer whitespace trimmed), its tool calls (name and canonical JSON arguments) and, for a tool
 * result, its call id and text. No prompt text is kept: only the digest.
 */
import { createHash } from 'node:crypto'
import type { ChatMessage } from '../schemas.js'
import type { Caller } from '../turn/lease.js'

const THINK = /<think>[\s\S]*?<\/think>/g

/** JSON with object keys sorted at every level (the same value always gives the same text). */
export function canonicalJson (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}

/** Arguments as canonical JSON when they are JSON text, else the text itself. */
function canonicalArguments (args: unknown): string {
  if (typeof args !== 'string') return canonicalJson(args ?? {})
  try {
    return canonicalJson(JSON.parse(args))
  } catch {
    return args
  }
}

/** The text of a message's content (text and refusal parts; other parts by their canonical JSON). */
function text (content: unknown): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content.replace(THINK, '').trim()
  if (!Array.isArray(content)) return canonicalJson(content)
  return content.map((p: unknown) => {
    const part = (p ?? {}) as Record<string, unknown>
    if (typeof part.text === 'string') return part.text
    if (typeof part.refusal === 'string') return part.refusal
    return canonicalJson(part)
  }).join('\n').replace(THINK, '').trim()
}

function calls (m: ChatMessage): Array<[string, string]> {
  const list: unknown[] = [...(Array.isArray(m.tool_calls) ? m.tool_calls : []), ...(m.function_call ? [{ function: m.function_call }] : [])]
  return list.map((c) => {
    const f = ((c ?? {}) as { function?: { name?: unknown; arguments?: unknown } }).function ?? {}
    return [String(f.name ?? ''), canonicalArguments(f.arguments)]
  })
}

/** One message, normalised: only what decides the conversation. */
function normalised (m: ChatMessage): unknown[] {
  const role = m.role === 'developer' ? 'system' : m.role
  if (role === 'tool' || role === 'function') return [role, m.tool_call_id ?? m.name ?? '', text(m.content)]
  if (role === 'assistant') return [role, text(m.content), calls(m)]
  return [role, text(m.content)]
}

/** The key of a conversation for `owner`: a SHA-256 digest (hex). */
export function conversationKey (owner: string, model: string, tools: readonly string[], messages: readonly ChatMessage[]): string {
  const h = createHash('sha256')
  h.update(canonicalJson([owner, model, [...tools].sort()]))
  for (const m of messages) h.update(`\n${canonicalJson(normalised(m))}`)
  return h.digest('hex')
}

/** Who owns a conversation: the API key's name, or in client mode a digest of the caller's own credential. */
export function ownerOf (caller: Caller, keyName: string | null): string {
  if (caller.kind === 'pool') return `key:${keyName ?? ''}`
  return `client:${createHash('sha256').update(caller.cookie ?? caller.token ?? '').digest('hex')}`
}

/** The declared tool names of a chat request (`tools` and legacy `functions`). */
export function declaredTools (body: { tools?: unknown; functions?: unknown }): string[] {
  const names: string[] = []
  if (Array.isArray(body.tools)) for (const t of body.tools) names.push(String((t as { function?: { name?: unknown } })?.function?.name ?? ''))
  if (Array.isArray(body.functions)) for (const f of body.functions) names.push(String((f as { name?: unknown })?.name ?? ''))
  return names
}

/**
 * A request as history plus its new turn: the last user message with the tool results just before
 * it (Anthropic puts a turn's `tool_result` blocks before its text), or the tool results after the
 * last assistant message. Undefined when there is nothing to continue (no assistant answer before
 * the new turn, or the request ends with something else).
 */
export function splitTurn (messages: readonly ChatMessage[]): { history: ChatMessage[]; turn: ChatMessage[] } | undefined {
  let i = messages.length
  if (messages[i - 1]?.role === 'user') i--
  while (i > 0 && (messages[i - 1]!.role === 'tool' || messages[i - 1]!.role === 'function')) i--
  if (i === messages.length) return undefined
  const history = messages.slice(0, i)
  if (!history.some((m) => m.role === 'assistant')) return undefined
  return { history, turn: messages.slice(i) }
}
