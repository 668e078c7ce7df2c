/**
 * Chat completions for the generation models (`-image`, `-image_edit`, `-video`): the prompt is the
 * last user message, `size` maps to an aspect ratio, and the result comes back as Markdown in
 * `content` (`![image](url)`, `[video](url)`), streamed or as one body. Video: the task is created
 * before anything is sent (failures are HTTP statuses); a streaming client then gets `: keep-alive`
 * comments and the upstream's progress as reasoning text while the task runs; a failed or timed-out
 * task is an error frame (or status), never a made-up result.
 */
import type { ServerResponse } from 'node:http'
import { InvalidRequestError, UpstreamError, toOpenAIError } from '../errors.js'
import type { CollectedAnswer, OutEvent, StreamFace, TurnEnd } from '../faces/face.js'
import { SseResponder, type HeaderValues } from '../faces/openai-sse.js'
import { abortReason } from '../lifecycle.js'
import type { ResolvedModel } from '../models.js'
import { estimateTokens } from '../pipeline/index.js'
import type { Caller } from '../turn/lease.js'
import { aspectRatio, type AspectRatio } from '../upstream/media.js'
import type { Attachment } from './attachment.js'
import type { MediaGenerator } from './generate.js'
import { pollVideo } from './video.js'

/** The OpenAI `size` as an aspect ratio, or 400 naming `param`. */
export function ratioOf (size: unknown, param = 'size'): AspectRatio {
  const r = typeof size === 'string' || size === undefined || size === null ? aspectRatio(size as string | undefined) : undefined
  if (!r) throw new InvalidRequestError(`${param} must be WIDTHxHEIGHT (e.g. 1024x1024, 1792x1024) or an aspect ratio (e.g. 16:9)`, param)
  return r
}

/** Text of the last user message (string content, or its text parts). */
export function lastUserText (messages: ReadonlyArray<{ role?: unknown; content?: unknown }>): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!
    if (m.role !== 'user') continue
    if (typeof m.content === 'string') return m.content.trim()
    if (Array.isArray(m.content)) {
      return m.content.map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
        .filter(Boolean).join('\n').trim()
    }
    return ''
  }
  return ''
}

/** image_edit: the images of the most recent message that has any (`messages[i]…` params). */
export function imagesToEdit (attachments: readonly Attachment[]): Attachment[] {
  const images = attachments.filter((a) => a.kind === 'image')
  const index = (a: Attachment): number => Number(/^messages\[(\d+)\]/.exec(a.param)?.[1] ?? -1)
  const last = Math.max(-1, ...images.map(index))
  return images.filter((a) => index(a) === last).slice(-3)
}

export interface MediaChatRequest {
  caller: Caller
  model: ResolvedModel
  messages: ReadonlyArray<{ role?: unknown; content?: unknown }>
  size: unknown
  attachments: readonly Attachment[]
  stream: boolean
  requestId: string
  signal: AbortSignal
}

export interface MediaChatDeps {
  gen: MediaGenerator
  keepAliveIntervalMs: number
  videoPollIntervalMs: number
}

/** What the access log is told. */
export interface MediaRecord { identity?: string; outcome: 'ok' | 'error' | 'client_closed'; error?: string }

const usageOf = (prompt: string, content: string): TurnEnd['usage'] => {
  const p = estimateTokens(prompt)
  const c = estimateTokens(content)
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } }
}

export class MediaChat {
  constructor (private readonly d: MediaChatDeps) {}

  private prepare (r: MediaChatRequest): { prompt: string; size: AspectRatio; images: Attachment[] } {
    const size = ratioOf(r.size)
    const prompt = lastUserText(r.messages)
    if (!prompt) throw new InvalidRequestError('The last user message must say what to generate', 'messages')
    const images = r.model.media === 'image_edit' ? imagesToEdit(r.attachments) : []
    if (r.model.media === 'image_edit' && images.length === 0) {
      throw new InvalidRequestError('An image edit needs an image: send one in the last user message (an image_url part) or earlier in the conversation', 'messages')
    }
    return { prompt, size, images }
  }

  /** The whole answer as one collected body. */
  async collect (r: MediaChatRequest, rec: MediaRecord): Promise<CollectedAnswer> {
    const p = this.prepare(r)
    const req = { caller: r.caller, model: r.model.base, prompt: p.prompt, size: p.size, attachments: p.images, requestId: r.requestId, signal: r.signal }
    try {
      let content: string
      if (r.model.media === 'video') {
        const ref = await this.d.gen.startVideo(req)
        rec.identity = ref.identity
        content = `[video](${await pollVideo((s) => this.d.gen.videoStatus(ref, r.caller, s), { signal: r.signal, intervalMs: this.d.videoPollIntervalMs })})`
      } else {
        const { url, identity } = await this.d.gen.image(req)
        rec.identity = identity
        content = `![image](${url})`
      }
      rec.outcome = 'ok'
      return { content, reasoning: '', toolCalls: [], end: { reason: 'stop', usage: usageOf(p.prompt, content) } }
    } catch (err) {
      throw this.failed(r, rec, err)
    }
  }

  /** The error to report for `err` (a video timeout says so). */
  private failed (r: MediaChatRequest, rec: MediaRecord, err: unknown): unknown {
    const reason = abortReason(r.signal)
    if (reason?.kind === 'client_closed') {
      rec.outcome = 'client_closed'
      return reason
    }
    const e = reason?.kind === 'timeout' && r.model.media === 'video'
      ? new UpstreamError('timeout', 'The video was not ready within VIDEO_TIMEOUT_MS')
      : reason ? reason.toError() : err
    rec.outcome = 'error'
    rec.error = e instanceof Error ? e.message : String(e)
    return e
  }

  /** Stream the answer; throws before commit (an HTTP status), never after. */
  async stream (r: MediaChatRequest, res: ServerResponse, commit: () => HeaderValues, face: StreamFace, rec: MediaRecord): Promise<void> {
    const p = this.prepare(r)
    const req = { caller: r.caller, model: r.model.base, prompt: p.prompt, size: p.size, attachments: p.images, requestId: r.requestId, signal: r.signal }
    let content: string | undefined
    let ref: Awaited<ReturnType<MediaGenerator['startVideo']>> | undefined
    try {
      if (r.model.media === 'video') {
        ref = await this.d.gen.startVideo(req)
        rec.identity = ref.identity
      } else {
        const img = await this.d.gen.image(req)
        rec.identity = img.identity
        content = `![image](${img.url})`
      }
    } catch (err) {
      throw this.failed(r, rec, err)
    }
    const sse = new SseResponder(res, r.signal, this.d.keepAliveIntervalMs, face.keepAlive)
    sse.open(commit())
    try {
      await sse.write(face.start())
      if (ref) {
        const task = ref
        const progress = (ev: OutEvent): void => { void sse.write(face.events([ev])).catch(() => {}) }
        const url = await pollVideo((s) => this.d.gen.videoStatus(task, r.caller, s), {
          signal: r.signal,
          intervalMs: this.d.videoPollIntervalMs,
          onProgress: (s) => progress({ kind: 'reasoning', text: `Generating the video${s.progress !== undefined ? `: ${s.progress}%` : ''}${s.message ? ` (${s.message})` : ''}\n` }),
        })
        content = `[video](${url})`
      }
      await sse.write(face.events([{ kind: 'content', text: content! }]) + face.end({ reason: 'stop', usage: usageOf(p.prompt, content!) }))
      rec.outcome = 'ok'
    } catch (err) {
      const e = this.failed(r, rec, err)
      if (rec.outcome !== 'client_closed' && !sse.gone) {
        const { status, body } = toOpenAIError(e)
        sse.fail(face.fail({ status, ...body.error }))
      }
    } finally {
      sse.end()
    }
  }
}
