/**
 * The seam between the shared turn machinery and the API faces (OpenAI Chat Completions, Anthropic
 * Messages, the Responses API). The runner drives the upstream and the pipeline stages; what comes
 * out is a stream of {@link OutEvent}s and one {@link TurnEnd}. A face renders them in its own wire
 * format: a {@link StreamFace} for SSE, and its own JSON body built from a {@link CollectedAnswer}.
 */
import type { OpenAIUsage } from '../openai/transform.js'

/**
 * Why the answer ended: `stop` (the model finished, or a stop sequence cut it), `length`
 * (max_tokens), `tool_calls` (the answer ended with one or more tool calls).
 */
export type EndReason = 'stop' | 'length' | 'tool_calls'

/** One validated tool call, complete: a face may split `arguments` into fragments if it streams them. */
export interface ToolCallOut {
  /** 0-based position among this answer's calls. */
  index: number
  /** `call_…`, unique per answer. */
  id: string
  name: string
  /** The arguments as a JSON text (an object). */
  arguments: string
}

/** What the pipeline lets out, in order. Empty texts are never emitted. */
export type OutEvent =
  | { kind: 'reasoning'; text: string }
  | { kind: 'content'; text: string }
  | { kind: 'tool_call'; call: ToolCallOut }

/** A web page a search model consulted (the upstream's `web_search_info`), in the upstream's order. */
export interface Source { url: string; title: string }

/** How the turn ended (after the last event). */
export interface TurnEnd {
  reason: EndReason
  usage: OpenAIUsage
  /** The pages a `-search` model consulted (absent when there were none); faces turn them into citations. */
  sources?: Source[]
  /** The stop sequence that cut the answer, when one did (Anthropic's `stop_sequence`). */
  stopSequence?: string
}

/** A face's error body and status, for errors after the stream has been committed. */
export interface FaceError {
  status: number
  message: string
  type: string
  param: string | null
  code: string | null
}

/**
 * Renders one streamed answer as SSE text. Each method returns the text to write (possibly empty);
 * the runner writes it with back-pressure. Called in this order: `start` once (at the commit point),
 * `events` any number of times, then exactly one of `end` or `fail`.
 */
export interface StreamFace {
  start (): string
  events (events: OutEvent[]): string
  end (end: TurnEnd): string
  fail (error: FaceError): string
  /** The text written when the client has heard nothing for a while (an SSE comment or a ping event). */
  readonly keepAlive: string
}

/** A whole answer, for the non-streaming faces. */
export interface CollectedAnswer {
  content: string
  reasoning: string
  toolCalls: ToolCallOut[]
  end: TurnEnd
}
