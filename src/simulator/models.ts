/** The simulator's model catalogue, shaped like `GET /api/models` items (protocol §1.4). */
import type { UpstreamModel } from '../upstream/protocol.js'

/** What the simulator itself needs to know about a model. */
export interface SimModel {
  id: string
  /** undefined: the model cannot think. */
  thinkingFormat: 'detail' | 'summary' | undefined
  chatTypes: readonly string[]
  /** `info.meta.think_skip.enable === false`: thinking must be on (2026 rule). */
  mustThink: boolean
  /** Accepts image input (`capabilities.vision`); images sent to other models are refused. */
  vision: boolean
  /** The upstream object served by `/api/models`. */
  wire: UpstreamModel
}

interface Spec {
  id: string
  name: string
  thinking?: 'detail' | 'summary'
  search?: boolean
  vision?: boolean
  /** t2i / image_edit / t2v chat types (the `-image` family). */
  media?: boolean
  context: number
  generation: number
  /** `info.meta.think_skip` (2026 lists only). */
  thinkSkip?: boolean
  /** Only in the 2026 catalogue. */
  only2026?: boolean
}

export type SimSite = '2025' | '2026'

const SPECS: readonly Spec[] = [
  { id: 'qwen3-max', name: 'Qwen3-Max', thinking: 'detail', search: true, vision: true, media: true, context: 262144, generation: 32768 },
  { id: 'qwen3-235b-a22b', name: 'Qwen3-235B-A22B-2507', thinking: 'detail', search: true, context: 131072, generation: 81920 },
  { id: 'qwen3-coder-plus', name: 'Qwen3-Coder', search: true, context: 1048576, generation: 65536 },
  { id: 'qwen3-vl-plus', name: 'Qwen3-VL-235B-A22B', thinking: 'detail', vision: true, context: 262144, generation: 32768 },
  { id: 'qwq-32b', name: 'QwQ-32B', thinking: 'detail', context: 131072, generation: 38912 },
  { id: 'qwen3.5-plus', name: 'Qwen3.5-Plus', thinking: 'summary', search: true, vision: true, context: 1000000, generation: 65536 },
  // 2026: a dated id under a clean name, and a model that must think (PROTOCOL-2026 §4).
  { id: 'qwen3.5-max-2026-03-08', name: 'Qwen3.5-Max-Preview', thinking: 'summary', search: true, context: 262144, generation: 65536, thinkSkip: true, only2026: true },
  { id: 'qwen3.8-max-preview', name: 'Qwen3.8-Max-Preview', thinking: 'summary', search: true, context: 262144, generation: 65536, thinkSkip: false, only2026: true },
]

const CREATED_AT = 1_750_000_000

function wire (s: Spec): UpstreamModel {
  const think = s.thinking !== undefined
  const vision = s.vision === true
  const chatType = ['t2t', ...(s.search ? ['search'] : []), ...(s.media ? ['t2i', 'image_edit', 't2v'] : []), 'artifacts', 'web_dev']
  return {
    id: s.id,
    name: s.name,
    object: 'model',
    owned_by: 'qwen',
    info: {
      id: s.id,
      user_id: '7d2b1c1e-5d8c-4a3b-9c1e-000000000000',
      base_model_id: null,
      name: s.name,
      params: {},
      meta: {
        profile_image_url: '/static/favicon.png',
        description: `${s.name} (simulated)`,
        short_description: s.name,
        capabilities: {
          vision, document: true, video: vision, audio: vision, citations: s.search === true,
          thinking: think, thinking_budget: think, search: s.search === true,
        },
        abilities: {
          vision: vision ? 1 : 0, document: 1, video: vision ? 1 : 0, audio: vision ? 1 : 0, mcp: 1,
          citations: s.search ? 1 : 0, thinking: think ? 1 : 0, thinking_budget: think ? 1 : 0,
        },
        max_context_length: s.context,
        max_generation_length: s.generation,
        ...(think ? { max_thinking_generation_length: 81920, max_summary_generation_length: 32768 } : {}),
        file_limits: { max_file_size: 104857600, max_files: 20 },
        modality: vision ? ['text', 'image', 'video'] : ['text'],
        chat_type: chatType,
        mcp: ['code-interpreter'],
        is_single_round: 0,
        auto_thinking: think,
        auto_search: s.search === true,
        ...(think ? { thinking_format: s.thinking } : {}),
        ...(s.thinkSkip !== undefined ? { think_skip: { enable: s.thinkSkip } } : {}),
      },
      access_control: null,
      is_active: true,
      is_visitor_active: true,
      updated_at: CREATED_AT,
      created_at: CREATED_AT,
    },
    preset: true,
    action_ids: [],
  }
}

/** A fresh catalogue of one site's models (each simulator owns its copy). */
export function modelCatalog (site: SimSite = '2026'): Map<string, SimModel> {
  return new Map(SPECS.filter((s) => site === '2026' || !s.only2026).map((s) => {
    const w = wire(s)
    return [s.id, { id: s.id, thinkingFormat: s.thinking, chatTypes: w.info!.meta!.chat_type!, mustThink: s.thinkSkip === false, vision: s.vision === true, wire: w }]
  }))
}
