/** The OpenAI Chat Completions face of a streamed answer: `chat.completion.chunk` frames, then `[DONE]`. */
import { ChunkWriter, DONE, KEEP_ALIVE, errorFrame } from '../openai/chunks.js'
import { urlCitations } from '../openai/citations.js'
import type { FaceError, OutEvent, StreamFace, TurnEnd } from './face.js'

export class OpenAIStreamFace implements StreamFace {
  readonly keepAlive = KEEP_ALIVE
  private readonly w: ChunkWriter
  /** The content sent so far, for the citations' indices (kept only while the answer may cite). */
  private content = ''

  /** `legacy`: the request used `functions` (calls go out as `function_call`). */
  constructor (id: string, created: number, model: string, private readonly includeUsage: boolean, legacy = false) {
    this.w = new ChunkWriter(id, created, model, includeUsage, legacy)
  }

  /** The role chunk (CONTRACT rule 3). */
  start (): string {
    return this.w.role()
  }

  events (events: OutEvent[]): string {
    for (const e of events) if (e.kind === 'content') this.content += e.text
    return this.w.events(events)
  }

  /** The finish chunk (with the citations), the usage chunk when asked for, and `[DONE]`. */
  end (end: TurnEnd): string {
    return this.w.finish(end.reason, urlCitations(this.content, end.sources ?? [])) + (this.includeUsage ? this.w.usage(end.usage) : '') + DONE
  }

  /** An error frame, then `[DONE]` (CONTRACT rule 7). */
  fail (error: FaceError): string {
    return errorFrame({ message: error.message, type: error.type, param: error.param, code: error.code }) + DONE
  }
}
