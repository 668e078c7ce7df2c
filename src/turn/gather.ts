/**
 * Collection for the non-streaming faces: read one opened turn to its end into content, reasoning
 * and tool calls, within the gateway's buffer for non-streaming answers. The upstream connection is
 * given back either way.
 */
import { UpstreamError } from '../errors.js'
import type { ToolCallOut } from '../faces/face.js'
import { abortReason } from '../lifecycle.js'
import type { CompletionTransformer } from '../openai/transform.js'
import { pump, settle, type Opened } from './pump.js'

export interface GatheredAnswer { t: CompletionTransformer; content: string; reasoning: string; toolCalls: ToolCallOut[] }

export async function gatherAnswer (opened: Opened, t: CompletionTransformer, signal: AbortSignal, maxBufferBytes: number): Promise<GatheredAnswer> {
  let content = ''
  let reasoning = ''
  const toolCalls: ToolCallOut[] = []
  try {
    await pump(opened, t, (events) => {
      for (const e of events) {
        if (e.kind === 'content') content += e.text
        else if (e.kind === 'reasoning') reasoning += e.text
        else toolCalls.push(e.call)
      }
      if (content.length + reasoning.length > maxBufferBytes) {
        throw new UpstreamError('limit', `The answer exceeded the gateway's ${maxBufferBytes}-character buffer for non-streaming answers; use stream: true`)
      }
    })
    return { t, content, reasoning, toolCalls }
  } catch (err) {
    // Upstream failures arrive mapped (UpstreamError); anything else is the gateway's own bug and
    // must not be blamed on the account or failed over.
    throw abortReason(signal) ?? err
  } finally {
    settle(opened, t)
  }
}
