/**
 * The tool-call markers (`TOOL_CALL_MARKERS`) and the lenient matching of the forms models drift
 * into. The configured open marker is matched exactly (case-insensitively); when it is bracket-shaped
 * (`[WORDS]` or `<WORDS>`) it is also matched leniently, as are the default family's forms:
 * `[TOOL CALL]`, `[tool_call]`, `[TOOL-CALLS]`, `[TOOL CALL` (no closing bracket), `<tool_call>`.
 * Matching works on a prefix of the text: `partial` says the text so far could still become a marker.
 */

export interface ToolMarkers {
  open: string
  close: string
}

export const DEFAULT_TOOL_MARKERS: Readonly<ToolMarkers> = Object.freeze({ open: '[TOOL CALL]', close: '[END TOOL CALL]' })

/** Where tool results are folded (not configurable: the model only reads them). */
export const RESULT_OPEN = '[TOOL RESULT'
export const RESULT_CLOSE = '[END TOOL RESULT]'

/** A marker the lenient matcher knows: an opener, words separated by spaces, `_` or `-`, an optional closer. */
interface Pattern { opener: string; words: string[]; closer: string }

export type Match = { end: number } | 'partial' | null

const SPACE = /[ \t]/
const SEP = /[ \t_-]/
const ALNUM = /[\p{L}\p{N}]/u
const BRACKETS: Record<string, string> = { '[': ']', '<': '>' }

/** `[TOOL CALL]` → `{opener: '[', words: ['tool', 'call'], closer: ']'}`; undefined when not bracket-shaped. */
function patternOf (marker: string, slash = false): Pattern | undefined {
  const closer = BRACKETS[marker[0] ?? '']
  if (!closer || !marker.endsWith(closer)) return undefined
  let inner = marker.slice(1, -1)
  if (slash) inner = inner.replace(/^\//, '')
  const words = inner.toLowerCase().split(/[ \t_-]+/).filter(Boolean)
  if (words.length === 0 || !words.every((w) => /^[\p{L}\p{N}]+$/u.test(w))) return undefined
  return { opener: marker[0]!, words, closer }
}

/** Lenient match of `p` at `i`: up to 4 spaces inside the brackets, 0–2 separators between words, a plural `s`, no closer needed. */
function matchPattern (s: string, i: number, p: Pattern): Match {
  if (s[i] !== p.opener) return null
  let j = i + 1
  const skip = (re: RegExp, max: number): boolean => {
    for (let k = 0; k < max && j < s.length && re.test(s[j]!); k++) j++
    return j < s.length
  }
  if (!skip(SPACE, 4)) return 'partial'
  for (let w = 0; w < p.words.length; w++) {
    if (w > 0 && !skip(SEP, 2)) return 'partial'
    for (const ch of p.words[w]!) {
      if (j >= s.length) return 'partial'
      if (s[j]!.toLowerCase() !== ch) return null
      j++
    }
  }
  if (j >= s.length) return 'partial'
  if (s[j] === 's' || s[j] === 'S') j++
  if (j >= s.length) return 'partial'
  if (ALNUM.test(s[j]!)) return null
  if (!skip(SPACE, 4)) return 'partial'
  if (s[j] === p.closer) j++
  return { end: j }
}

/** Exact, case-insensitive match of `literal` at `i`. */
function matchLiteral (s: string, i: number, literal: string): Match {
  for (let k = 0; k < literal.length; k++) {
    if (i + k >= s.length) return 'partial'
    if (s[i + k]!.toLowerCase() !== literal[k]!.toLowerCase()) return null
  }
  return { end: i + literal.length }
}

const TOOL_CALL_WORDS = ['tool', 'call']

/** The open-marker matcher for one marker configuration. */
export class MarkerSet {
  private readonly patterns: Pattern[]
  private readonly literals: string[]
  /** The characters a marker can start with (anything else is plain text). */
  readonly starts: Set<string>

  constructor (readonly markers: ToolMarkers) {
    const own = patternOf(markers.open)
    this.patterns = [
      { opener: '[', words: TOOL_CALL_WORDS, closer: ']' },
      { opener: '<', words: TOOL_CALL_WORDS, closer: '>' },
      ...(own ? [own] : []),
    ]
    this.literals = own ? [] : [markers.open]
    this.starts = new Set([...this.patterns.map((p) => p.opener), ...this.literals.map((l) => l[0]!)])
  }

  /** An open marker at `s[i]`: its end, `partial` (the text ends inside a possible marker), or null. */
  matchOpen (s: string, i: number): Match {
    if (!this.starts.has(s[i]!)) return null
    let partial = false
    for (const p of this.patterns) {
      const m = matchPattern(s, i, p)
      if (m === 'partial') partial = true
      else if (m) return m
    }
    for (const l of this.literals) {
      const m = matchLiteral(s, i, l)
      if (m === 'partial') partial = true
      else if (m) return m
    }
    return partial ? 'partial' : null
  }

  /**
   * Text with every marker the model could read as structure (call markers in both directions,
   * result markers, the configured ones) made inert: its brackets become parentheses, so quoted file
   * contents or tool output can never open a call or close a result block.
   */
  neutralise (text: string): string {
    this.inertRe ??= this.inertPattern()
    return text.replace(this.inertRe, inert)
  }

  private inertRe: RegExp | undefined

  private inertPattern (): RegExp {
    const own = [patternOf(this.markers.open), patternOf(this.markers.close, true)].filter((p): p is Pattern => p !== undefined)
    const words = [['tool', 'call'], ['end', 'tool', 'call'], ['tool', 'result'], ['end', 'tool', 'result']]
    const sources = [
      ...words.flatMap((w) => ['[', '<'].map((o) => lenientSource({ opener: o, words: w, closer: BRACKETS[o]! }))),
      ...own.map(lenientSource),
      ...[this.markers.open, this.markers.close].filter((m) => !patternOf(m, m === this.markers.close)).map(escape),
    ]
    return new RegExp(sources.join('|'), 'giu')
  }
}

function escape (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/** The lenient form of a pattern as a regular expression source (a `/` may follow the opener). */
function lenientSource (p: Pattern): string {
  return `${escape(p.opener)}[ \\t]{0,4}/?[ \\t]{0,4}${p.words.map(escape).join('[ \\t_-]{0,2}')}s?(?![\\p{L}\\p{N}])[ \\t]{0,4}${escape(p.closer)}?`
}

/** `[TOOL CALL]` → `(TOOL CALL)`: same words, no longer a marker. */
function inert (marker: string): string {
  if (marker.length === 0) return marker
  const first = marker[0] === '[' || marker[0] === '<' ? '(' : `(${marker[0]}`
  const rest = marker.slice(1)
  return first + (rest.endsWith(']') || rest.endsWith('>') ? `${rest.slice(0, -1)})` : rest)
}
