/**
 * Reading an opened upstream turn: feed its frames through the transformer's stages until the answer
 * ends, and give the connection back. Shared by every face (SSE and JSON).
 */
import { UpstreamError } from '../errors.js'
import type { OutEvent } from '../faces/face.js'
import type { CompletionTransformer } from '../openai/transform.js'
import type { CompletionStream } from '../upstream/client.js'
import type { Frame } from '../upstream/protocol.js'

/** An upstream turn whose first frames have arrived. */
export interface Opened {
  stream: CompletionStream
  first: Frame[]
  chatId: string
}

/** The upstream closed the stream cleanly but never said the answer was finished: not a success. */
function truncated (): UpstreamError {
  return new UpstreamError('upstream_error', 'The upstream ended the stream before the answer was finished')
}

/**
 * Feed the upstream frames through the transformer until the answer ends, handing each network
 * chunk's events to `emit` (including the events of good frames that precede an error frame in
 * the same chunk, before the error is thrown). A stream that ends before the answer does is an
 * error.
 */
export async function pump (opened: Opened, t: CompletionTransformer, emit: (events: OutEvent[]) => Promise<void> | void): Promise<void> {
  let batch: Frame[] | null = opened.first
  while (batch) {
    let failure: unknown
    try {
      for (const f of batch) t.push(f)
    } catch (err) {
      failure = err
    }
    const events = t.events
    t.events = []
    await emit(events)
    if (failure !== undefined) throw failure
    if (t.ended) return
    batch = await opened.stream.next()
  }
  throw truncated()
}

/** Give the upstream connection back: drained when the answer finished, cut otherwise. */
export function settle (opened: Opened, t: CompletionTransformer): void {
  if (t.upstreamFinished) opened.stream.release()
  else opened.stream.close()
}
