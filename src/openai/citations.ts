/**
 * Search citations: the upstream's `web_search_info` results as OpenAI `url_citation` annotations
 * into the final `content`. The search models cite with `[[n]]` markers (n counts the results from
 * 1); each marker becomes one annotation whose span is the marker itself. When the text cites
 * nothing, every result is annotated over the whole content (the answer's sources). Indices count
 * Unicode code points, end exclusive, as OpenAI's do (Python string indices).
 */
import type { Source } from '../faces/face.js'

export interface UrlCitation {
  type: 'url_citation'
  url_citation: { url: string; title: string; start_index: number; end_index: number }
}

const MARKER = /\[\[(\d{1,3})\]\]/g

function citation (s: Source, start: number, end: number): UrlCitation {
  return { type: 'url_citation', url_citation: { url: s.url, title: s.title, start_index: start, end_index: end } }
}

/** Code-point length of `text` (an emoji or an astral ideograph counts once). */
function points (text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}

export function urlCitations (content: string, sources: readonly Source[]): UrlCitation[] {
  if (sources.length === 0) return []
  const out: UrlCitation[] = []
  let at = 0
  let cp = 0
  for (const m of content.matchAll(MARKER)) {
    const s = sources[Number(m[1]) - 1]
    if (!s) continue
    cp += points(content.slice(at, m.index))
    const len = points(m[0])
    out.push(citation(s, cp, cp + len))
    cp += len
    at = m.index + m[0].length
  }
  if (out.length > 0) return out
  const all = points(content)
  return sources.map((s) => citation(s, 0, all))
}
