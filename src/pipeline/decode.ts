/**
 * Upstream frames → turn events. Stateful only where the protocol is: the answer is candidate "0"
 * (frames of a second, interleaved candidate are dropped; see `CandidateLock`), and 2026 reasoning
 * snapshots are turned into increments. What a frame means is decided by `readFrame` in the
 * protocol module; an error frame throws the gateway's UpstreamError, and so does an answer that
 * finishes without any text (502 `upstream_empty_answer`).
 */
import { UpstreamError } from '../errors.js'
import { CandidateLock, problemToError, readFrame, type Frame } from '../upstream/protocol.js'
import type { TurnEvent } from './events.js'

const ANSWER_PHASE: TurnEvent = Object.freeze({ kind: 'phase', phase: 'answer' })

export class FrameDecoder {
  private readonly lock = new CandidateLock()
  /** The answer's response id (the parent of a next turn): candidate "0", else the first that sent a delta. */
  get responseId (): string | undefined { return this.lock.responseId }
  /** Answer text was decoded. */
  private answered = false
  /** The upstream said the answer is finished (its `answer`/`finished` frame was decoded). */
  finished = false
  private snapshotLength = 0
  /** The last text frame was an answer frame. */
  private answering = false

  /** The events of one frame (usage first). Throws an UpstreamError for an error frame. */
  push (frame: Frame): TurnEvent[] {
    const f = readFrame(frame)
    // An error frame tagged with the other candidate's id is that candidate's business.
    if (!this.lock.accepts(f)) return []
    if (f.kind === 'error') throw problemToError(f.problem!)
    const out: TurnEvent[] = f.usage ? [{ kind: 'usage', usage: f.usage }] : []
    switch (f.kind) {
      case 'search':
        out.push({ kind: 'search', results: f.results! })
        break
      case 'reasoning':
        if (f.text) this.reasoning(out, f.text)
        break
      case 'reasoning_snapshot':
        if (f.text.length > this.snapshotLength) {
          this.reasoning(out, f.text.slice(this.snapshotLength))
          this.snapshotLength = f.text.length
        }
        break
      case 'answer':
        if (f.text) {
          if (!this.answering) {
            this.answering = true
            out.push(ANSWER_PHASE)
          }
          out.push({ kind: 'content', text: f.text })
          this.answered = true
        }
        if (f.finished) {
          // Reaching here means no stage cut the answer (a cut ends the turn before the next frame).
          if (!this.answered) throw new UpstreamError('empty_answer', 'The upstream finished the answer without any text')
          this.finished = true
          out.push({ kind: 'finish', reason: 'stop', upstream: true })
        }
        break
      default:
        // Bookkeeping, tool results and image generation are not part of a text completion.
    }
    return out
  }

  private reasoning (out: TurnEvent[], text: string): void {
    this.answering = false
    out.push({ kind: 'reasoning', text })
  }
}
