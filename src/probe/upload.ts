/**
 * The probe's upload step (`npm run probe -- --upload`): one 1-pixel PNG through the live upload
 * path (STS grant, signed PUT), then a turn in a new chat of a vision model carrying the file, read
 * to its end and the chat deleted. At most five requests.
 */
import { randomUUID } from 'node:crypto'
import { encodePng } from '../media/png.js'
import type { UpstreamClient } from '../upstream/client.js'
import { modelInfo, readFrame, type Credentials, type UpstreamModel } from '../upstream/protocol.js'
import { fileObject } from '../upstream/upload.js'

/** What the step needs of the probe. */
export interface ProbeSteps {
  client: UpstreamClient
  cred: Credentials
  check: (name: string, ok: boolean, detail: string) => boolean
  step: <T>(fn: (signal: AbortSignal) => Promise<T>) => Promise<T>
  call: (signal: AbortSignal) => { signal: AbortSignal; proxyUrl?: string }
  describe: (err: unknown) => string
}

export async function probeUpload (p: ProbeSteps, models: readonly UpstreamModel[]): Promise<void> {
  const png = encodePng(1, 1)
  const spec = { filename: `${randomUUID()}.png`, size: png.length, mime: 'image/png' }
  let file: Record<string, unknown>
  try {
    const grant = await p.step((s) => p.client.getSts(p.cred, spec, p.call(s)))
    p.check('upload: STS grant', true, `bucket ${grant.bucket}, ${grant.endpoint ? 'endpoint given' : 'region only'}`)
    await p.step((s) => p.client.putObject(grant, png, spec.mime, p.call(s)))
    p.check('upload: object stored', true, `${png.length} bytes`)
    file = fileObject(grant, { ...spec, kind: 'image' }, Date.now())
  } catch (err) {
    p.check('upload: STS grant and object PUT', false, p.describe(err))
    return
  }
  const vision = models.find((m) => modelInfo(m).vision && !modelInfo(m).mustThink)
  if (!vision) {
    p.check('upload: turn with the image', false, 'skipped: no vision model in the list')
    return
  }
  let chatId: string
  try {
    chatId = await p.step((s) => p.client.createChat(p.cred, vision.id, 't2t', p.call(s)))
  } catch (err) {
    p.check('upload: turn with the image', false, p.describe(err))
    return
  }
  try {
    const text = await p.step(async (s) => {
      const { stream, first } = await p.client.openCompletion(p.cred, {
        chatId, model: vision.id, chatType: 't2t', thinking: false, content: 'What colour is this pixel? One word.', parentId: null, files: [file],
      }, p.call(s))
      let out = ''
      try {
        for (let batch: typeof first | null = first; batch; batch = await stream.next()) {
          for (const f of batch) {
            const v = readFrame(f)
            if (v.kind === 'answer') out += v.text
          }
        }
      } finally {
        stream.close()
      }
      return out
    })
    p.check('upload: turn with the image', text.length > 0, text ? `answered (${Array.from(text).length} characters) by ${vision.id}` : 'empty answer')
  } catch (err) {
    p.check('upload: turn with the image', false, p.describe(err))
  } finally {
    try {
      await p.step((s) => p.client.deleteChat(p.cred, chatId, p.call(s)))
    } catch {}
  }
}
