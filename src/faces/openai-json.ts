/**
 * The JSON face's collection: read one opened turn to its end into content and reasoning, within the
 * gateway's buffer for non-streaming answers. The upstream connection is given back either way.
 */
import { UpstreamError } from '../errors.js'
import { abortReason } from '../lifecycle.js'
import type { CompletionTransformer } from '../openai/transform.js'
import { pump, settle, type Opened } from '../turn/pump.js'

export interface GatheredAnswer { t: CompletionTransformer; content: string; reasoning: string }

export async function gatherAnswer (opened: Opened, t: CompletionTransformer, signal: AbortSignal, maxBufferBytes: number): Promise<GatheredAnswer> {
  let content = ''
  let reasoning = ''
  try {
    await pump(opened, t, (events) => {
      for (const e of events) {
        if (e.kind === 'content') content += e.text
        else reasoning += e.text
      }
      if (content.length + reasoning.length > maxBufferBytes) {
        throw new UpstreamError('limit', `The answer exceeded the gateway's ${maxBufferBytes}-character buffer for non-streaming answers; use stream: true`)
      }
    })
    return { t, content, reasoning }
  } catch (err) {
    // Upstream failures arrive mapped (UpstreamError); anything else is the gateway's own bug and
    // must not be blamed on the account or failed over.
    throw abortReason(signal) ?? err
  } finally {
    settle(opened, t)
  }
}
