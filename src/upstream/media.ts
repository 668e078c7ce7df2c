/**
 * The chat.qwen.ai media wire (PROTOCOL §1.9, §4.1.4, PROTOCOL-2026 §5): aspect ratios, the t2v
 * task body and its task id, the task status answers, and where a t2i/image_edit stream carries the
 * image URL. Pure functions; the calls are `UpstreamClient.createVideoTask/taskStatus`.
 */
import { classifyErrorObject, completionBody, problemToError, readFrame, type CompletionBody, type Frame, type TurnSpec } from './protocol.js'
import { UpstreamError } from '../errors.js'

export const TASK_PATHS = {
  /** RF (2025 and HEAD): flat `{task_status, content}`. */
  v1: (id: string): string => `/api/v1/tasks/status/${encodeURIComponent(id)}`,
  /** [X2] 2026: wrapped `{success, data:{task_status, content, …}}`; the fallback. */
  v2: (id: string): string => `/api/v2/task/status/${encodeURIComponent(id)}`,
} as const

/** The aspect ratios the upstream's image and video generation take. */
export const RATIOS = ['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3'] as const
export type AspectRatio = typeof RATIOS[number]

const RATIO_VALUES = RATIOS.map((r) => { const [w, h] = r.split(':').map(Number); return [r, w! / h!] as const })

/** The supported ratio closest to `w/h` (compared on a log scale, so 2:1 and 1:2 are equally far from 1:1). */
function nearest (w: number, h: number): AspectRatio {
  const v = Math.log(w / h)
  let best: AspectRatio = '1:1'
  let dist = Infinity
  for (const [r, x] of RATIO_VALUES) {
    const d = Math.abs(Math.log(x) - v)
    if (d < dist - 1e-9) { best = r; dist = d }
  }
  return best
}

/**
 * An OpenAI `size` as the upstream's aspect ratio: `WxH` (`1024x1024` → 1:1, `1792x1024` → 16:9,
 * `1536x1024` → 3:2, …) or `W:H`, each mapped to the nearest supported ratio; `auto` or none → 1:1.
 * Undefined for anything else (the caller answers 400).
 */
export function aspectRatio (size: string | undefined | null): AspectRatio | undefined {
  if (size === undefined || size === null || size === '' || size === 'auto') return '1:1'
  const m = /^\s*(\d{1,5})\s*[x×:*]\s*(\d{1,5})\s*$/i.exec(size)
  if (!m) return undefined
  const w = Number(m[1])
  const h = Number(m[2])
  if (w === 0 || h === 0) return undefined
  return nearest(w, h)
}

/** The t2v task body: sent with `stream: false`, answered with JSON (PROTOCOL §1.9). */
export function videoTaskBody (t: TurnSpec, now: number): Omit<CompletionBody, 'stream'> & { stream: false } {
  return { ...completionBody(t, now), stream: false }
}

/** The first string under a `task_id` key anywhere in `v` (depth-limited). */
function findTaskId (v: unknown, depth = 0): string | undefined {
  if (depth > 8 || !v || typeof v !== 'object') return undefined
  if (Array.isArray(v)) {
    for (const x of v) {
      const id = findTaskId(x, depth + 1)
      if (id) return id
    }
    return undefined
  }
  const r = v as Record<string, unknown>
  if (typeof r.task_id === 'string' && r.task_id) return r.task_id
  for (const x of Object.values(r)) {
    const id = findTaskId(x, depth + 1)
    if (id) return id
  }
  return undefined
}

/** The task id of a t2v answer: `data.messages[0].extra.wanx.task_id`, else any `task_id` in it. */
export function videoTaskOf (body: unknown): string {
  const p = body && typeof body === 'object' ? classifyErrorObject(body as Record<string, unknown>) : undefined
  if (p) throw problemToError(p)
  const data = (body as { data?: { messages?: Array<{ extra?: { wanx?: { task_id?: unknown } } }> } } | undefined)?.data
  const direct = data?.messages?.[0]?.extra?.wanx?.task_id
  const id = typeof direct === 'string' && direct ? direct : findTaskId(body)
  if (!id) throw new UpstreamError('upstream_error', 'The upstream accepted the video request but returned no task id')
  return id
}

export interface TaskStatus {
  state: 'running' | 'success' | 'failed'
  /** The result's URL (success). */
  url?: string
  /** 0–100 when the upstream reports it. */
  progress?: number
  /** The upstream's message (failures, or a status text). */
  message?: string
}

const FAILED = new Set(['failed', 'fail', 'error', 'cancelled', 'canceled', 'timeout'])

/** A task status answer, flat (v1) or wrapped (2026). */
export function taskStatusOf (body: unknown): TaskStatus {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
  const p = classifyErrorObject(b)
  if (p) throw problemToError(p)
  const d = (b.data && typeof b.data === 'object' ? b.data : b) as Record<string, unknown>
  const raw = String(d.task_status ?? d.status ?? '').toLowerCase()
  const message = typeof d.message === 'string' && d.message ? d.message : undefined
  if (raw === 'success' || raw === 'succeeded' || raw === 'completed') {
    const url = typeof d.content === 'string' && /^https?:\/\//.test(d.content) ? d.content : undefined
    if (!url) throw new UpstreamError('upstream_error', 'The upstream reported the task done without a result URL')
    return { state: 'success', url }
  }
  if (FAILED.has(raw)) return { state: 'failed', ...(message ? { message } : {}) }
  if (!raw) throw new UpstreamError('upstream_error', 'The upstream task status answer has no task_status')
  const progress = typeof d.progress === 'number' && d.progress >= 0 && d.progress <= 100 ? Math.round(d.progress) : undefined
  return { state: 'running', ...(progress !== undefined ? { progress } : {}), ...(message ? { message } : {}) }
}

/**
 * The image URL a t2i/image_edit frame carries: the content of an `image_gen` delta (CK), an
 * `extra.image_list[].image` (RF), or the content of any delta that is only an https URL. Error
 * frames throw.
 */
export function imageUrlOf (frame: Frame): string | undefined {
  const v = readFrame(frame)
  if (v.kind === 'error') throw problemToError(v.problem!)
  const delta = frame.choices?.[0]?.delta ?? frame.choices?.[0]?.message
  if (!delta) return undefined
  const list = delta.extra?.image_list
  if (Array.isArray(list)) {
    for (const x of list) {
      const u = (x as { image?: unknown } | null)?.image
      if (typeof u === 'string' && /^https?:\/\//.test(u)) return u
    }
  }
  const text = typeof delta.content === 'string' ? delta.content.trim() : ''
  return /^https?:\/\/\S+$/.test(text) ? text : undefined
}
