/**
 * The gateway's token estimate, used when the upstream reports no usage and for `max_tokens`:
 * one token per CJK (or other wide) character, one per four other characters.
 */
export class TokenCounter {
  private wide = 0
  private narrow = 0
  get tokens (): number { return this.wide + Math.ceil(this.narrow / 4) }

  add (text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c >= 0xdc00 && c <= 0xdfff) continue // low surrogate: counted with its high half
      if (c >= 0x2e80 && (c < 0xd800 || c > 0xdbff)) this.wide++
      else this.narrow++
    }
  }

  /** The longest prefix of `text` that keeps the count at or below `limit`; the count includes it. */
  fit (text: string, limit: number): string {
    let i = 0
    while (i < text.length) {
      const c = text.charCodeAt(i)
      const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length
      const wide = c >= 0x2e80 && !pair
      const next = wide ? this.wide + 1 + Math.ceil(this.narrow / 4) : this.wide + Math.ceil((this.narrow + 1) / 4)
      if (next > limit) break
      if (wide) this.wide++
      else this.narrow++
      i += pair ? 2 : 1
    }
    return text.slice(0, i)
  }
}

export function estimateTokens (text: string): number {
  const c = new TokenCounter()
  c.add(text)
  return c.tokens
}
