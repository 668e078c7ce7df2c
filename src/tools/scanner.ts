/**
 * The incremental call scanner: answer text in, text and call candidates out, in order, whatever
 * way the text is split. Text is released as soon as it cannot be (part of) an open marker; only a
 * possible marker prefix (and a run of backticks whose length is not known yet) is held back.
 * Markers inside code fences or inline code are quoted text. After a marker, the call's JSON object
 * is read with string-aware brace balancing; an object that never closes (or outgrows `maxCall`)
 * is released as text. Several objects in one marker block are several candidates.
 *
 * The scanner only finds candidates; whether one is a valid call is the tool-call stage's business.
 */
import type { MarkerSet } from './markers.js'

export type Scanned =
  | { kind: 'text'; text: string }
  /** `raw`: the candidate's whole text (marker, lead-in, object); `json`: the object's text. */
  | { kind: 'call'; raw: string; json: string }

/** Longest lead-in between a marker and its `{` (a fence opener, `json`, a colon, a name…). */
const MAX_LEAD = 128

type Mode = 'text' | 'lead' | 'object' | 'between'

export class CallScanner {
  private pending = ''
  private mode: Mode = 'text'
  private out: Scanned[] = []
  private text = ''
  /** Backticks of the open code fence (0: none), of the open inline code span (0: none). */
  private fence = 0
  private inline = 0
  /** Only spaces since the last newline (a fence opens or closes only there). */
  private lineStart = true
  /** The current candidate: its raw text, its object's text and the brace-scan state. */
  private block = ''
  private json = ''
  private depth = 0
  private inString = false
  private escaped = false
  /** The lead-in opened a code fence around the object: its closing backticks belong to the call. */
  private fenced = false

  constructor (private readonly markers: MarkerSet, private readonly maxCall: number) {}

  push (text: string): Scanned[] {
    this.pending += text
    return this.run(false)
  }

  /** The text is complete: whatever is held back or unfinished is text. */
  end (): Scanned[] {
    return this.run(true)
  }

  private run (final: boolean): Scanned[] {
    for (;;) {
      const progressed = this.mode === 'text'
        ? this.scanText(final)
        : this.mode === 'lead' ? this.scanLead(final) : this.mode === 'object' ? this.scanObject(final) : this.scanBetween(final)
      if (!progressed) break
    }
    this.releaseText()
    const out = this.out
    this.out = []
    return out
  }

  private releaseText (): void {
    if (this.text) this.out.push({ kind: 'text', text: this.text })
    this.text = ''
  }

  /** Plain text: release it up to a marker (then `lead`) or up to what must be held back. */
  private scanText (final: boolean): boolean {
    const s = this.pending
    let i = 0
    while (i < s.length) {
      const c = s[i]!
      if (c === '`') {
        let j = i
        while (j < s.length && s[j] === '`') j++
        if (j === s.length && !final) break
        this.backticks(j - i)
        this.lineStart = false
        i = j
        continue
      }
      if (c === '\n') {
        this.lineStart = true
        this.inline = 0
        i++
        continue
      }
      if (this.fence === 0 && this.inline === 0 && this.markers.starts.has(c)) {
        const m = this.markers.matchOpen(s, i)
        if (m === 'partial' && !final) break
        if (m !== null && m !== 'partial') {
          this.text += s.slice(0, i)
          this.block = s.slice(i, m.end)
          this.pending = s.slice(m.end)
          this.lineStart = false
          this.fenced = false
          this.mode = 'lead'
          return true
        }
      }
      if (c !== ' ' && c !== '\t') this.lineStart = false
      i++
    }
    this.text += s.slice(0, i)
    this.pending = s.slice(i)
    return false
  }

  private backticks (n: number): void {
    if (this.fence > 0) {
      if (this.lineStart && n >= this.fence) this.fence = 0
    } else if (this.inline > 0) {
      if (n === this.inline) this.inline = 0
    } else if (this.lineStart && n >= 3) {
      this.fence = n
    } else {
      this.inline = n
    }
  }

  /** Between the marker and the object's `{`: anything short that cannot start another marker. */
  private scanLead (final: boolean): boolean {
    const s = this.pending
    for (let k = 0; k < s.length && k <= MAX_LEAD; k++) {
      const c = s[k]!
      if (c === '{') {
        const lead = s.slice(0, k)
        this.fenced ||= lead.includes('```')
        this.block += lead + '{'
        this.json = '{'
        this.depth = 1
        this.inString = false
        this.escaped = false
        this.pending = s.slice(k + 1)
        this.mode = 'object'
        return true
      }
      if (c === '[' || c === '<') return this.abandon()
    }
    if (s.length > MAX_LEAD || final) return this.abandon()
    return false
  }

  /** Not a call after all: the marker (and what was read of the candidate) is text. */
  private abandon (): boolean {
    this.text += this.block
    this.block = ''
    this.json = ''
    this.mode = 'text'
    return true
  }

  private scanObject (final: boolean): boolean {
    const s = this.pending
    let i = 0
    for (; i < s.length && this.depth > 0; i++) {
      const c = s[i]
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === '\\') this.escaped = true
        else if (c === '"') this.inString = false
      } else if (c === '"') {
        this.inString = true
      } else if (c === '{') {
        this.depth++
      } else if (c === '}') {
        this.depth--
      }
    }
    this.json += s.slice(0, i)
    this.block += s.slice(0, i)
    this.pending = s.slice(i)
    if (this.depth === 0) {
      this.releaseText()
      this.out.push({ kind: 'call', raw: this.block, json: this.json })
      this.block = ''
      this.json = ''
      this.mode = 'between'
      return true
    }
    if (this.json.length > this.maxCall || final) {
      this.lineStart = false
      return this.abandon()
    }
    return false
  }

  /** After an object: whitespace, commas and the lead-in's closing fence, then another object or text. */
  private scanBetween (final: boolean): boolean {
    const s = this.pending
    let i = 0
    for (;;) {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r' || s[i] === ',')) i++
      if (this.fenced && s.startsWith('```', i)) {
        this.fenced = false
        i += 3
        continue
      }
      break
    }
    const fenceStart = this.fenced && i < s.length && s[i] === '`' && '```'.startsWith(s.slice(i, i + 3))
    if ((i === s.length || fenceStart) && !final) {
      return false
    }
    // The skipped separators are text (dropped after a valid call, kept after an invalid one).
    this.text += s.slice(0, i)
    this.pending = s.slice(i)
    this.lineStart = /\n[ \t]*$/.test(s.slice(0, i)) || (i === 0 && this.lineStart)
    if (s[i] === '{') {
      this.releaseText()
      this.block = ''
      this.pending = s.slice(i)
      this.mode = 'lead'
      return true
    }
    this.fenced = false
    this.mode = 'text'
    return true
  }
}
