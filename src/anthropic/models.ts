/**
 * The model list in the Anthropic shape, for clients that send `anthropic-version` on
 * `GET /v1/models` (Claude Code and the Anthropic SDK's `models.list()`).
 */
import type { OpenAIModel } from '../models.js'

export interface AnthropicModel {
  type: 'model'
  id: string
  display_name: string
  created_at: string
}

export function anthropicModel (m: OpenAIModel): AnthropicModel {
  return { type: 'model', id: m.id, display_name: m.id, created_at: new Date(m.created * 1000).toISOString() }
}

export function anthropicModelList (models: OpenAIModel[]): { data: AnthropicModel[]; has_more: false; first_id: string | null; last_id: string | null } {
  const data = models.map(anthropicModel)
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null }
}

/** Whether a request speaks the Anthropic API (its SDK always sends `anthropic-version`). */
export function wantsAnthropic (headers: Record<string, unknown>): boolean {
  return typeof headers['anthropic-version'] === 'string'
}
