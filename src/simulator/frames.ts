/** The SSE frames of one completion turn (protocol §3.2–§3.3). */
import type { Delta, Frame, Usage, WebSearchInfo } from '../upstream/protocol.js'
import { chunkText, estimateTokens, prefixTokens } from './text.js'

export interface TurnPlan {
  chatId: string
  /** Id of the stored user message (`response.created.parent_id`). */
  userId: string
  responseId: string
  responseIndex: '0' | '1'
  prompt: string
  answer: string
  /** Reasoning format to emit; undefined when thinking is off or the model cannot think. */
  thinking: 'detail' | 'summary' | undefined
  reasoning: string
  /** `feature_config.output_schema === "phase"`: deltas carry `phase`. */
  phase: boolean
  search: boolean
  /** t2i / image_edit: the generated image's URL, sent in an `image_gen` frame instead of answer text. */
  image: string | undefined
  frameChars: number
  usage: boolean
  /** Put `response_id` on every frame (two interleaved candidates). */
  tagged: boolean
  nowSec: number
}

const SUMMARY_TITLES = ['Understanding the question', 'Planning the answer', 'Writing the reply']

export const sse = (frame: unknown): string => `data: ${JSON.stringify(frame)}\n\n`

function searchResults (prompt: string): WebSearchInfo[] {
  const topic = Array.from(prompt.trim()).slice(0, 40).join('') || 'query'
  const q = encodeURIComponent(topic)
  const item = (hostname: string, path: string, title: string, snippet: string): WebSearchInfo =>
    ({ url: `https://${hostname}${path}${q}`, title, snippet, hostname })
  return [
    item('en.wikipedia.org', '/w/index.php?search=', `${topic} - Wikipedia`, `An encyclopedia entry about ${topic}.`),
    item('www.zhihu.com', '/search?q=', `如何看待 ${topic}？`, `知乎上关于 ${topic} 的讨论。`),
    item('news.example.com', '/articles?q=', `Latest on ${topic}`, `News coverage of ${topic}.`),
  ]
}

/** Every frame of one candidate answer, serialised (`data: …\n\n`), in order. */
export function turnFrames (p: TurnPlan): string[] {
  const out: string[] = []
  const input = estimateTokens(p.prompt)
  const usage = (r: number, a: number): Usage => ({
    input_tokens: input,
    output_tokens: r + a,
    total_tokens: input + r + a,
    output_tokens_details: { reasoning_tokens: r, text_tokens: a },
  })
  const delta = (content: string, phase: string, status: string, more?: Partial<Delta>): Delta => {
    const d: Delta = { role: 'assistant', content }
    if (p.phase) d.phase = phase
    d.status = status
    return more ? { ...d, ...more } : d
  }
  const push = (d: Delta, r: number, a: number): void => {
    const f: Frame = { choices: [{ delta: d }], response_id: p.responseId }
    if (p.usage) f.usage = usage(r, a)
    f.timestamp = p.nowSec
    out.push(sse(f))
  }

  out.push(sse({ 'response.created': { chat_id: p.chatId, parent_id: p.userId, response_id: p.responseId, response_index: p.responseIndex } }))

  let r = 0
  if (p.thinking === 'detail' && p.reasoning) {
    const pieces = chunkText(p.reasoning, p.frameChars)
    const counts = prefixTokens(pieces)
    pieces.forEach((piece, i) => push(delta(piece, 'think', 'typing'), counts[i]!, 0))
    r = counts[counts.length - 1]!
    push(delta('', 'think', 'finished'), r, 0)
  } else if (p.thinking === 'summary' && p.reasoning) {
    const thoughts = p.reasoning.split('\n')
    const counts = prefixTokens(thoughts.map((t, i) => (i ? `\n${t}` : t)))
    const extra = (n: number): Delta['extra'] => ({
      summary_title: { content: SUMMARY_TITLES.slice(0, Math.min(n, SUMMARY_TITLES.length)) },
      summary_thought: { content: thoughts.slice(0, n) },
    })
    thoughts.forEach((_, i) => push(delta('', 'thinking_summary', 'typing', { extra: extra(i + 1) }), counts[i]!, 0))
    r = counts[counts.length - 1]!
    push(delta('', 'thinking_summary', 'finished', { extra: extra(thoughts.length) }), r, 0)
  }

  if (p.search) {
    const f: Frame = {
      choices: [{ delta: delta('', 'web_search', 'finished', { name: 'web_search', extra: { web_search_info: searchResults(p.prompt) } }) }],
    }
    if (p.tagged) f.response_id = p.responseId
    out.push(sse(f))
  }

  let a = 0
  if (p.image) {
    push(delta(p.image, 'image_gen', 'typing', { extra: { output_image_hw: [[1328, 1328]] } }), r, 0)
  } else {
    const pieces = chunkText(p.answer, p.frameChars)
    const counts = prefixTokens(pieces)
    pieces.forEach((piece, i) => push(delta(piece, 'answer', 'typing'), r, counts[i]!))
    a = counts.length ? counts[counts.length - 1]! : 0
  }
  push(delta('', 'answer', 'finished'), r, a)
  return out
}

/** Two candidates' frames: both `response.created` first, then alternating. */
export function interleaveFrames (first: string[], second: string[]): string[] {
  const out = [first[0]!, second[0]!]
  for (let i = 1; i < Math.max(first.length, second.length); i++) {
    if (i < first.length) out.push(first[i]!)
    if (i < second.length) out.push(second[i]!)
  }
  return out
}
