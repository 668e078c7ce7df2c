/**
 * JSON in model output: lenient parsing (conservative repairs only) and extraction of the JSON value
 * from an answer that may wrap it in a code fence or prose.
 */

/**
 * `JSON.parse`, then, if that fails, once more after two conservative repairs: raw control
 * characters inside strings escaped, trailing commas before `}`/`]` removed. Undefined when it is
 * not JSON either way.
 */
export function parseLenient (text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) }
  } catch {
    // Repaired below.
  }
  try {
    return { value: JSON.parse(repair(text)) }
  } catch {
    return undefined
  }
}

const CONTROL: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function repair (text: string): string {
  let out = ''
  let inString = false
  let escaped = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (inString) {
      if (escaped) escaped = false
      else if (c === '\\') escaped = true
      else if (c === '"') inString = false
      else if (c < ' ') {
        out += CONTROL[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
        continue
      }
      out += c
      continue
    }
    if (c === '"') inString = true
    if (c === ',') {
      let j = i + 1
      while (j < text.length && /\s/.test(text[j]!)) j++
      if (text[j] === '}' || text[j] === ']') continue
    }
    out += c
  }
  return out
}

/** The end (exclusive) of the balanced JSON object or array that starts at `start`, or -1. */
export function balancedEnd (text: string, start: number): number {
  const open = text[start]
  const close = open === '{' ? '}' : ']'
  let depth = 0
  let inString = false
  let escaped = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (escaped) escaped = false
      else if (c === '\\') escaped = true
      else if (c === '"') inString = false
    } else if (c === '"') {
      inString = true
    } else if (c === open) {
      depth++
    } else if (c === close && --depth === 0) {
      return i + 1
    }
  }
  return -1
}

const FENCE = /```[\w-]*[ \t]*\r?\n([\s\S]*?)\r?\n?[ \t]*```/g

/**
 * The JSON value in an answer: the whole text, else the content of a code fence, else the first
 * balanced object (or array, unless `objectOnly`) in the prose. `json` is the value's text as the
 * model wrote it (repaired when it had to be).
 */
export function extractJson (answer: string, objectOnly: boolean): { json: string; value: unknown } | undefined {
  const candidates = [answer.trim(), ...[...answer.matchAll(FENCE)].map((m) => m[1]!.trim())]
  for (const c of candidates) {
    const got = accept(c, objectOnly)
    if (got) return got
  }
  for (let i = 0; i < answer.length; i++) {
    const c = answer[i]
    if (c !== '{' && (objectOnly || c !== '[')) continue
    const end = balancedEnd(answer, i)
    if (end < 0) continue
    const got = accept(answer.slice(i, end), objectOnly)
    if (got) return got
  }
  return undefined
}

function accept (text: string, objectOnly: boolean): { json: string; value: unknown } | undefined {
  if (!text.startsWith('{') && !text.startsWith('[')) return undefined
  const parsed = parseLenient(text)
  if (!parsed) return undefined
  const v = parsed.value
  if (objectOnly && (v === null || typeof v !== 'object' || Array.isArray(v))) return undefined
  let json = text
  try {
    JSON.parse(text)
  } catch {
    json = JSON.stringify(v)
  }
  return { json, value: v }
}
