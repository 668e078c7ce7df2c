/**
 * Deterministic texts and the token estimate of the simulator. Gateway tests import
 * `defaultAnswer`/`defaultReasoning` to know what a completion will contain.
 */

const SPACES = /\s+/g

/** The prompt, whitespace-collapsed and cut to `max` code points. */
function quote (prompt: string, max: number): string {
  const chars = Array.from(prompt.replace(SPACES, ' ').trim())
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : chars.join('')
}

/**
 * The answer text for a prompt (about 100–200 characters). It mixes CJK text and an emoji, so that
 * frames and byte-level splits cut through multi-byte UTF-8 sequences. With `search`, citation
 * markers follow (what a `chat_type: "search"` turn answers). With `earlier` (the user texts of the
 * chat's earlier turns, the chain a follow-up is answered in) it says which turn it is and quotes the first.
 */
export function defaultAnswer (prompt: string, opts: { search?: boolean; earlier?: readonly string[] } = {}): string {
  const base = `你好! This is the simulated Qwen answering "${quote(prompt, 60)}". ` +
    'The reply is deterministic, mixes 中文 with ASCII and an emoji 🚀, and ends here.'
  // A follow-up in the same chat answers with its chain in context: which turn it is, and how the chat began.
  const earlier = opts.earlier ?? []
  const text = earlier.length ? `${base} [turn ${earlier.length + 1} of this chat, which began with "${quote(earlier[0]!, 30)}"]` : base
  return opts.search ? `${text} Sources: [[1]] [[2]]` : text
}

/**
 * The reasoning text for a prompt: several lines. With `thinking_format: "summary"` each line is one
 * element of `summary_thought.content` (the text is the elements joined with "\n").
 */
export function defaultReasoning (prompt: string): string {
  return [
    `The user wrote: "${quote(prompt, 40)}".`,
    'I should reply briefly and deterministically, 先思考再回答.',
    'A friendly greeting with one emoji 🤔 will do.',
  ].join('\n')
}

/** CJK ideographs, kana, Hangul, CJK punctuation and full-width forms count one token each. */
function isCjk (cp: number): boolean {
  return (cp >= 0x3000 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xac00 && cp <= 0xd7af) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff00 && cp <= 0xffef) ||
    (cp >= 0x20000 && cp <= 0x2fa1f)
}

/**
 * Cumulative token estimates: element i = `estimateTokens(pieces.slice(0, i + 1).join(''))`, in one
 * pass (frames carry cumulative usage).
 */
export function prefixTokens (pieces: readonly string[]): number[] {
  const out: number[] = []
  let done = 0
  let run = 0
  for (const piece of pieces) {
    for (const ch of piece) {
      if (isCjk(ch.codePointAt(0)!)) {
        done += Math.ceil(run / 4) + 1
        run = 0
      } else {
        run++
      }
    }
    out.push(done + Math.ceil(run / 4))
  }
  return out
}

/**
 * The simulator's token count: each CJK character is one token, every maximal run of other
 * characters (code points, whitespace included) is ceil(length / 4).
 */
export function estimateTokens (text: string): number {
  return prefixTokens([text])[0]!
}

/** Split text into pieces of `size` code points (never inside a surrogate pair). */
export function chunkText (text: string, size: number): string[] {
  const chars = Array.from(text)
  const out: string[] = []
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''))
  return out
}
