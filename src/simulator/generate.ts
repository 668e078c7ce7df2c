/**
 * The simulator's generation side (PROTOCOL §1.9): t2i/image_edit images as real PNGs whose
 * dimensions follow the requested aspect ratio, and t2v tasks that run for a while (or fail, when
 * scripted), with the status endpoints:
 *   GET /api/v1/tasks/status/<id>   flat {task_status, content, progress}
 *   GET /api/v2/task/status/<id>    (2026) {success, data:{task_status, content, remaining_time, …}},
 *                                   HTTP 200 with the real status in `x-actual-status-code`
 * Generated files live in the simulator's object store and are served from its own port.
 */
import { randomUUID } from 'node:crypto'
import { encodePng } from '../media/png.js'
import { appError, jsonReply, type Reply } from './bodies.js'
import type { FileStore, SimCtx } from './files.js'

/** The ratios the simulated upstream accepts in `size`. */
export const SIM_RATIOS = new Set(['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3'])
/** Longest side of a generated image, in pixels. */
const IMAGE_SIDE = 64

/** A few bytes that start like an MP4 (an `ftyp` box, then `mdat`). */
export function fakeMp4 (seed: string): Buffer {
  const ftyp = Buffer.from('000000186674797069736f6d0000020069736f6d6d703431', 'hex')
  const payload = Buffer.from(`simulated video ${seed}`)
  const mdat = Buffer.alloc(8)
  mdat.writeUInt32BE(8 + payload.length)
  mdat.write('mdat', 4, 'latin1')
  return Buffer.concat([ftyp, mdat, payload])
}

/** Width and height of a generated image for `ratio` (`16:9` → 64×36). */
export function imageDims (ratio: string): { width: number; height: number } {
  const [w, h] = ratio.split(':').map(Number) as [number, number]
  return w >= h ? { width: IMAGE_SIDE, height: Math.max(1, Math.round(IMAGE_SIDE * h / w)) } : { width: Math.max(1, Math.round(IMAGE_SIDE * w / h)), height: IMAGE_SIDE }
}

interface Task {
  id: string
  owner: string
  chatId: string
  startedAt: number
  durationMs: number
  fail: string | undefined
  url: string | undefined
}

export interface TaskScript {
  /** How long the task runs, ms. */
  durationMs: number
  /** Fail at the end with this message instead of succeeding. */
  fail?: string | undefined
}

export interface Generator<C extends SimCtx> {
  /** Generate and store an image; its URL. */
  image: (owner: string, chatId: string, responseId: string, ratio: string) => string
  /** Create a t2v task; the JSON answer of the `stream: false` completion. */
  video: (owner: string, chatId: string, ratio: string, script: TaskScript) => Reply
  /** The status routes, or undefined for other paths. */
  handler: (method: string, path: string) => ((ctx: C, owner: string) => void) | undefined
  clear: () => void
}

export function generator<C extends SimCtx> (store: FileStore<C>, o: { is2026: boolean; now: () => number; reply: (ctx: C, r: Reply) => void }): Generator<C> {
  const tasks = new Map<string, Task>()

  function status (ctx: C, owner: string, id: string, wrapped: boolean): void {
    const task = tasks.get(id)
    if (!task || task.owner !== owner) {
      if (!wrapped) return o.reply(ctx, appError(404, 'Not_Found', 'Task not found'))
      ctx.res.setHeader('x-actual-status-code', '404')
      return o.reply(ctx, appError(200, 'Not_Found', 'Task not found'))
    }
    const elapsed = o.now() - task.startedAt
    const done = elapsed >= task.durationMs
    let body: Record<string, unknown>
    if (!done) {
      const progress = Math.min(99, Math.floor(100 * elapsed / Math.max(1, task.durationMs)))
      body = { task_status: 'running', content: '', progress, message: '', remaining_time: `${Math.ceil((task.durationMs - elapsed) / 1000)}s` }
    } else if (task.fail !== undefined) {
      body = { task_status: 'failed', content: '', message: task.fail }
    } else {
      task.url ??= store.put(owner, `output/${owner}/t2v/${task.chatId}/${task.id}.mp4`, 'video/mp4', fakeMp4(task.id))
      body = { task_status: 'success', content: task.url, message: '' }
    }
    if (!wrapped) return o.reply(ctx, jsonReply(200, body))
    ctx.res.setHeader('x-actual-status-code', '200')
    o.reply(ctx, jsonReply(200, { success: true, request_id: randomUUID(), data: { chat_type: 't2v', sub_chat_type: null, duration: null, ...body } }))
  }

  return {
    image (owner, chatId, responseId, ratio) {
      const { width, height } = imageDims(ratio)
      return store.put(owner, `output/${owner}/t2i/${chatId}/${responseId}.png`, 'image/png', encodePng(width, height))
    },
    video (owner, chatId, ratio, script) {
      const id = randomUUID()
      tasks.set(id, { id, owner, chatId, startedAt: o.now(), durationMs: script.durationMs, fail: script.fail, url: undefined })
      return jsonReply(200, {
        success: true,
        request_id: randomUUID(),
        data: {
          chat_id: chatId, parent_id: randomUUID(), message_id: randomUUID(),
          messages: [{ role: 'assistant', content: '', extra: { wanx: { task_id: id } }, done: false, size: ratio }],
        },
      })
    },
    handler (method, path) {
      if (method !== 'GET') return undefined
      const v1 = '/api/v1/tasks/status/'
      const v2 = '/api/v2/task/status/'
      const id = (p: string): string => { try { return decodeURIComponent(path.slice(p.length)) } catch { return '' } }
      if (path.startsWith(v1) && path.length > v1.length) return (ctx, owner) => status(ctx, owner, id(v1), false)
      if (o.is2026 && path.startsWith(v2) && path.length > v2.length) return (ctx, owner) => status(ctx, owner, id(v2), true)
      return undefined
    },
    clear () {
      tasks.clear()
    },
  }
}
