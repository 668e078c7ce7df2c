/**
 * The live probe (`npm run probe`): a short fixed sequence against the configured upstream through
 * the production client (`UpstreamClient`), each answer checked with the parsers the gateway uses
 * (`modelsOf`/`modelInfo`, `readFrame`, the OpenAI transformer), reported one expectation a line.
 *
 * Sequence (at most six requests): token from the cookie, model list, one new chat, one tiny
 * streamed completion with thinking off, a follow-up turn with thinking on in the same chat (its
 * parent is the first answer's response id), delete the chat.
 *
 * Framework-free and process-free: the entry point (`src/probe-cli.ts`) builds the client, runs
 * this, prints the report and picks the exit code.
 */
import { UpstreamError } from '../errors.js'
import { CompletionTransformer } from '../openai/transform.js'
import type { CompletionStream, UpstreamClient } from '../upstream/client.js'
import { modelInfo, readFrame, redactForLog, type Credentials, type Frame, type UpstreamModel } from '../upstream/protocol.js'
import { probeUpload } from './upload.js'

/** One expectation and how it went. */
export interface ProbeCheck {
  /** Stable name, e.g. `completion: finished frame`. */
  name: string
  ok: boolean
  /** What was seen (ok) or what differed (not ok); redacted. */
  detail: string
}

export interface ProbeReport {
  /** Every check passed. */
  ok: boolean
  /** The upstream's origin (no credentials). */
  upstream: string
  /** Upstream requests sent. */
  requests: number
  checks: ProbeCheck[]
}

export interface ProbeOptions {
  client: UpstreamClient
  /** The account's browser cookie. */
  cookie: string
  /** Route through the account's own proxy (`@proxy=` suffix). */
  proxyUrl?: string | undefined
  /** For the report only. */
  upstream: string
  /** Budget of each step (one request, or one whole stream), default 60 s. */
  stepTimeoutMs?: number
  /** Prompt of the plain completion, default `Reply with the word ok`. */
  prompt?: string
  /** Also send one 1-pixel image through the upload path (`--upload`, `src/probe/upload.ts`). */
  upload?: boolean
}

const PROMPT = 'Reply with the word ok'
const THINK_PROMPT = 'What is 2 + 3? Answer with the number only.'
/** Characters of answer or reasoning text a report may show. */
const SAMPLE_CHARS = 4
/** Characters of an error message a report may show. */
const MESSAGE_CHARS = 160

/** The first few characters of a text, nothing more. */
export function sample (text: string): string {
  const chars = Array.from(text)
  return JSON.stringify(chars.slice(0, SAMPLE_CHARS).join('')) + (chars.length > SAMPLE_CHARS ? '…' : '')
}

/** An error as a report may show it: code and a redacted, short message. */
function describe (err: unknown): string {
  if (err instanceof UpstreamError) {
    // An unreadable stream, an empty answer or an oversized frame is what a changed wire format looks like.
    const drift = err.kind === 'upstream_error' || err.kind === 'empty_answer' || err.kind === 'limit'
    const what = drift ? 'an answer the gateway does not recognise' : `a known upstream refusal (${err.kind}, not drift)`
    return `${what}: ${redactForLog(err.message, MESSAGE_CHARS)}`
  }
  const e = err as { name?: string; message?: string }
  return `${e?.name ?? 'Error'}: ${redactForLog(String(e?.message ?? err), MESSAGE_CHARS)}`
}

/** The keys of a frame, for a report line about a frame nobody understood. */
function keysOf (frame: Frame): string {
  return Object.keys(frame).sort().join(',') || '(empty)'
}

interface StreamFacts {
  frames: number
  firstKind: string | undefined
  /** Frames `readFrame` could not place in a text completion (`other`), with their keys. */
  unknown: string[]
  answerFrames: number
  /** Answer-text frames (phase `answer`, or no phase) that carried no `phase`. */
  answerFramesWithoutPhase: number
  usage: boolean
  content: string
  reasoning: string
  finished: boolean
  responseId: string | undefined
}

/** Read a stream to its end through the frame decoding and the transformer the gateway uses. */
async function readStream (stream: CompletionStream, first: Frame[]): Promise<StreamFacts> {
  const t = new CompletionTransformer({ thinkingOutput: 'reasoning_content', stop: [], maxTokens: undefined })
  const f: StreamFacts = {
    frames: 0, firstKind: undefined, unknown: [], answerFrames: 0, answerFramesWithoutPhase: 0, usage: false,
    content: '', reasoning: '', finished: false, responseId: undefined,
  }
  const take = (frame: Frame): void => {
    const v = readFrame(frame)
    f.frames++
    f.firstKind ??= v.kind
    if (v.kind === 'other') f.unknown.push(keysOf(frame))
    if (v.kind === 'answer') {
      const delta = frame.choices?.[0]?.delta ?? frame.choices?.[0]?.message
      if (v.text || v.finished) f.answerFrames++
      if (v.text && delta?.phase === undefined) f.answerFramesWithoutPhase++
    }
    if (v.usage && (v.usage.output !== undefined || v.usage.input !== undefined)) f.usage = true
    t.push(frame)
    for (const ev of t.events) {
      if (ev.kind === 'content') f.content += ev.text
      else if (ev.kind === 'reasoning') f.reasoning += ev.text
    }
    t.events = []
  }
  for (const frame of first) take(frame)
  for (;;) {
    const batch = await stream.next()
    if (!batch) break
    for (const frame of batch) take(frame)
  }
  f.finished = t.upstreamFinished
  f.responseId = t.responseId
  return f
}

class Probe {
  readonly checks: ProbeCheck[] = []
  requests = 0
  readonly cred: Credentials = {}

  constructor (private readonly o: ProbeOptions) {}

  check (name: string, ok: boolean, detail: string): boolean {
    this.checks.push({ name, ok, detail })
    return ok
  }

  /** Run one step with its own time budget; the timer is always cleared. */
  async step<T> (fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController()
    const ms = this.o.stepTimeoutMs ?? 60_000
    const timer = setTimeout(() => ac.abort(new Error(`no answer within ${ms} ms`)), ms)
    try {
      return await fn(ac.signal)
    } finally {
      clearTimeout(timer)
    }
  }

  call (signal: AbortSignal): { signal: AbortSignal; proxyUrl?: string } {
    this.requests++
    return { signal, ...(this.o.proxyUrl ? { proxyUrl: this.o.proxyUrl } : {}) }
  }

  async run (): Promise<void> {
    try {
      const t = await this.step((s) => this.o.client.fetchToken(this.o.cookie, this.call(s)))
      this.cred.token = t.token
      this.cred.cookie = this.o.cookie
      this.check('auth: token from the cookie', true, t.expiresAt ? `expires in ${Math.round((t.expiresAt - Date.now()) / 3_600_000)} h` : 'no expiry given')
    } catch (err) {
      this.check('auth: token from the cookie', false, describe(err))
      return
    }

    let models: UpstreamModel[]
    try {
      models = await this.step((s) => this.o.client.listModels(this.cred, this.call(s)))
      this.check('model list: parses', models.length > 0, `${models.length} models`)
    } catch (err) {
      this.check('model list: parses', false, describe(err))
      return
    }
    if (models.length === 0) return
    // A model that can think but need not, so that the plain turn can have thinking off (a model that
    // must think refuses that); one that must think only when there is no other.
    const thinker = models.find((m) => modelInfo(m).thinking && !modelInfo(m).mustThink) ?? models.find((m) => modelInfo(m).thinking)
    const mustThink = thinker !== undefined && modelInfo(thinker).mustThink === true
    this.check('model list: has a thinking-capable model', thinker !== undefined, thinker ? thinker.id : 'no entry has abilities/capabilities.thinking')
    const model = (thinker ?? models[0]!).id

    let chatId: string
    try {
      chatId = await this.step((s) => this.o.client.createChat(this.cred, model, 't2t', this.call(s)))
      this.check('chats/new: returns an id', true, `for ${model}`)
    } catch (err) {
      this.check('chats/new: returns an id', false, describe(err))
      return
    }

    try {
      const plain = await this.completion('completion', chatId, model, mustThink, null, this.o.prompt ?? PROMPT)
      if (thinker) await this.completion('thinking', chatId, model, true, plain?.responseId ?? null, THINK_PROMPT)
      else this.check('thinking: reasoning frames', false, 'skipped: no thinking-capable model in the list')
    } finally {
      await this.remove(chatId)
    }
    if (this.o.upload) {
      await probeUpload({
        client: this.o.client, cred: this.cred, describe,
        check: (n, ok, d) => this.check(n, ok, d), step: (fn) => this.step(fn), call: (s) => this.call(s),
      }, models)
    }
  }

  /** One streamed turn, read to the end, checked. Returns what was read, or undefined when it did not open. */
  private async completion (label: 'completion' | 'thinking', chatId: string, model: string, thinking: boolean, parentId: string | null, content: string): Promise<StreamFacts | undefined> {
    let facts: StreamFacts
    try {
      facts = await this.step(async (s) => {
        const { stream, first } = await this.o.client.openCompletion(this.cred, { chatId, model, chatType: 't2t', thinking, content, parentId }, this.call(s))
        try {
          return await readStream(stream, first)
        } finally {
          stream.close()
        }
      })
    } catch (err) {
      this.check(`${label}: answers with an event stream`, false, describe(err))
      return undefined
    }
    this.check(`${label}: answers with an event stream`, true, `${facts.frames} frames`)
    this.check(`${label}: first frame is response.created`, facts.firstKind === 'created', facts.firstKind === 'created' ? 'ok' : `first frame was ${facts.firstKind ?? 'none'}`)
    this.check(`${label}: every frame understood`, facts.unknown.length === 0,
      facts.unknown.length === 0 ? 'ok' : `${facts.unknown.length} of ${facts.frames} frames not understood (keys: ${[...new Set(facts.unknown)].join(' | ')})`)
    if (thinking) {
      this.check('thinking: reasoning frames', facts.reasoning.length > 0, facts.reasoning ? `reasoning ${sample(facts.reasoning)}` : 'no think/thinking_summary frame with text')
    }
    this.check(`${label}: answer phase present`, facts.answerFrames > 0 && facts.answerFramesWithoutPhase === 0,
      facts.answerFrames === 0 ? 'no answer frame' : facts.answerFramesWithoutPhase > 0 ? `${facts.answerFramesWithoutPhase} answer frames without "phase"` : 'ok')
    this.check(`${label}: answer text`, facts.content.length > 0, facts.content ? sample(facts.content) : 'empty')
    this.check(`${label}: finished frame`, facts.finished, facts.finished ? 'ok' : 'no answer frame with status "finished"')
    this.check(`${label}: usage present`, facts.usage, facts.usage ? 'ok' : 'no frame carried usage token counts')
    return facts
  }

  private async remove (chatId: string): Promise<void> {
    try {
      const deleted = await this.step((s) => this.o.client.deleteChat(this.cred, chatId, this.call(s)))
      this.check('delete: chat deleted', deleted, deleted ? 'ok' : 'the upstream said the chat does not exist')
    } catch (err) {
      this.check('delete: chat deleted', false, `${describe(err)} (delete it in the web app)`)
    }
  }
}

/** Scrub a secret from a report wherever an upstream message might have echoed it. */
function scrub (text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) if (s.length >= 8) out = out.split(s).join('[redacted]')
  return out
}

/** Run the probe. Never throws for upstream trouble: every failure is a check that did not pass. */
export async function runProbe (o: ProbeOptions): Promise<ProbeReport> {
  const p = new Probe(o)
  await p.run()
  const secrets = [o.cookie, ...(p.cred.token ? [p.cred.token] : []), ...o.cookie.split(/;\s*/).map((kv) => kv.slice(kv.indexOf('=') + 1))]
  const checks = p.checks.map((c) => ({ ...c, detail: scrub(c.detail, secrets) }))
  return { ok: checks.every((c) => c.ok), upstream: o.upstream, requests: p.requests, checks }
}
