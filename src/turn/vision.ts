/**
 * Vision fallback: a chat turn that carries an image (or a video) for a model whose capabilities
 * (from the model list) lack vision is served by `VISION_FALLBACK_MODEL` instead. The response
 * still names the requested model (`requested` is kept). The `-thinking`/`-search` flags are kept
 * where the fallback model has them. Generation turns (`t2i`, `image_edit`, `t2v`) are left alone:
 * their images are inputs to the generator, not something to look at.
 */
import { InvalidRequestError, ModelNotFoundError, clip } from '../errors.js'
import type { Attachment } from '../media/attachment.js'
import type { ResolvedModel } from '../models.js'

export interface VisionFallbackDeps {
  /** `VISION_FALLBACK_MODEL`. */
  fallback: string
  /** Resolves a model name (the catalogue's `resolve`). */
  resolve: (name: string) => Promise<ResolvedModel>
  /** Told once when the fallback is used. */
  onFallback: (requested: string, fallback: string) => void
}

/** Whether the attachments need a model that can see (images and video do). */
export function needsVision (attachments: readonly Attachment[]): boolean {
  return attachments.some((a) => a.kind === 'image' || a.kind === 'video')
}

/** The model that serves the turn: `model` itself, or the vision fallback in its place. */
export async function visionModel (model: ResolvedModel, attachments: readonly Attachment[], d: VisionFallbackDeps): Promise<ResolvedModel> {
  if (model.capabilities.vision || !needsVision(attachments)) return model
  if (model.chatType !== 't2t' && model.chatType !== 'search') return model
  let fb: ResolvedModel
  try {
    fb = await d.resolve(d.fallback)
  } catch (err) {
    if (!(err instanceof ModelNotFoundError)) throw err
    throw new InvalidRequestError(
      `The model \`${clip(model.requested)}\` cannot see images, and the vision fallback model \`${clip(d.fallback)}\` (VISION_FALLBACK_MODEL) is not available; choose a model with vision`,
      'model', 'model_not_vision',
    )
  }
  if (!fb.capabilities.vision) {
    throw new InvalidRequestError(
      `The model \`${clip(model.requested)}\` cannot see images, and the vision fallback model \`${clip(d.fallback)}\` (VISION_FALLBACK_MODEL) cannot either; choose a model with vision`,
      'model', 'model_not_vision',
    )
  }
  d.onFallback(model.requested, fb.base)
  const thinking = model.thinking && fb.capabilities.thinking
  const search = model.search && fb.capabilities.search
  return { ...fb, requested: model.requested, thinking, search, chatType: search ? 'search' : 't2t' }
}
