/**
 * The ready-chat creations waiting or running (issue #12): at most `concurrency` at once, in the
 * order asked, and counted per stock key (a key's target counts its creations under way).
 * Framework-free; `keeper.ts` owns one.
 */
export class CreationQueue<J extends { key: string }> {
  private readonly waiting: J[] = []
  /** Waiting or running, per key. */
  private readonly perKey = new Map<string, number>()
  private running = 0

  /** `work(job)` creates one chat (never rejects); `after()` runs when one is done. */
  constructor (private readonly concurrency: number, private readonly work: (job: J) => Promise<void>, private readonly after: () => void) {}

  /** No creation waiting or running. */
  get empty (): boolean {
    return this.running === 0 && this.waiting.length === 0
  }

  /** Creations of `key` waiting or running. */
  count (key: string): number {
    return this.perKey.get(key) ?? 0
  }

  push (job: J): void {
    this.waiting.push(job)
    this.perKey.set(job.key, this.count(job.key) + 1)
  }

  /** Forget the waiting creations of `key`, or every waiting one (running ones finish). */
  drop (key?: string): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const job = this.waiting[i]!
      if (key !== undefined && job.key !== key) continue
      this.waiting.splice(i, 1)
      this.done(job.key)
    }
  }

  /** Start waiting creations, up to the concurrency. */
  pump (): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!
      this.running++
      void this.work(job).finally(() => {
        this.running--
        this.done(job.key)
        this.after()
      })
    }
  }

  private done (key: string): void {
    const left = this.count(key) - 1
    if (left > 0) this.perKey.set(key, left)
    else this.perKey.delete(key)
  }
}
