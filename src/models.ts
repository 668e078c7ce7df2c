/**
 * The model catalogue: the upstream list (cached with a TTL, last good list kept on failure, a
 * built-in list when nothing was ever fetched), expanded into the OpenAI-visible variants
 * `<id>`, `<id>-thinking`, `<id>-search`, `<id>-thinking-search`, plus configured aliases.
 */
import { ModelNotFoundError } from './errors.js'
import { modelInfo, type ChatType, type ModelInfo, type UpstreamModel } from './upstream/protocol.js'

export interface ModelCapabilities { thinking: boolean; search: boolean; vision: boolean }

/** What a requested model name resolves to. */
export interface ResolvedModel {
  /** The name the client asked for (echoed back in responses). */
  requested: string
  /** The upstream model id. */
  base: string
  thinking: boolean
  search: boolean
  chatType: ChatType
  capabilities: ModelCapabilities
}

/** An entry of `GET /v1/models`. */
export interface OpenAIModel {
  id: string
  object: 'model'
  created: number
  owned_by: string
  root: string
  capabilities: ModelCapabilities & { reasoning: boolean; web_search: boolean }
  context_length?: number
  alias_for?: string
}

/** Used when the upstream list has never been fetched successfully. */
export const BUILTIN_MODELS: readonly ModelInfo[] = [
  { id: 'qwen3-max', created: 1758240000, thinking: true, search: true, vision: true, contextLength: 262144 },
  { id: 'qwen3-vl-plus', created: 1758240000, thinking: true, search: true, vision: true, contextLength: 262144 },
  { id: 'qwen3-coder-plus', created: 1753142400, thinking: false, search: true, vision: false, contextLength: 1048576 },
  { id: 'qwen3-235b-a22b', created: 1745884800, thinking: true, search: true, vision: false, contextLength: 131072 },
]

const SUFFIX_THINKING = '-thinking'
const SUFFIX_SEARCH = '-search'

/** Split `x-thinking-search` / `x-search-thinking` / `x-thinking` / `x-search` into base and flags. */
export function parseModelName (name: string): { base: string; thinking: boolean; search: boolean } {
  let base = name
  let thinking = false
  let search = false
  for (let i = 0; i < 2; i++) {
    if (!thinking && base.endsWith(SUFFIX_THINKING) && base.length > SUFFIX_THINKING.length) {
      thinking = true
      base = base.slice(0, -SUFFIX_THINKING.length)
    } else if (!search && base.endsWith(SUFFIX_SEARCH) && base.length > SUFFIX_SEARCH.length) {
      search = true
      base = base.slice(0, -SUFFIX_SEARCH.length)
    }
  }
  return { base, thinking, search }
}

export interface CatalogOptions {
  ttlMs: number
  aliases: Record<string, string>
  now: () => number
  /** Fetch the upstream list; errors are reported through `onError` and the old list is kept. */
  fetch: () => Promise<UpstreamModel[]>
  onError: (err: unknown) => void
}

interface Snapshot {
  models: Map<string, ModelInfo>
  listing: OpenAIModel[]
  fetchedAt: number
  source: 'upstream' | 'builtin'
}

export class ModelCatalog {
  private snapshot: Snapshot
  private inflight: Promise<void> | undefined

  constructor (private readonly opts: CatalogOptions) {
    this.snapshot = this.build(BUILTIN_MODELS, 'builtin', 0)
  }

  get source (): 'upstream' | 'builtin' { return this.snapshot.source }

  private build (list: readonly ModelInfo[], source: Snapshot['source'], fetchedAt: number): Snapshot {
    const models = new Map(list.map((m) => [m.id, m]))
    const listing: OpenAIModel[] = []
    for (const m of list) {
      const { thinking, search } = m
      const variants = [m.id]
      if (thinking) variants.push(m.id + SUFFIX_THINKING)
      if (search) variants.push(m.id + SUFFIX_SEARCH)
      if (thinking && search) variants.push(m.id + SUFFIX_THINKING + SUFFIX_SEARCH)
      for (const id of variants) listing.push(this.entry(id, m))
    }
    for (const [alias, target] of Object.entries(this.opts.aliases)) {
      const m = models.get(parseModelName(target).base)
      if (m) listing.push({ ...this.entry(alias, m), alias_for: target })
    }
    return { models, listing, fetchedAt, source }
  }

  private entry (id: string, m: ModelInfo): OpenAIModel {
    const e: OpenAIModel = {
      id,
      object: 'model',
      created: m.created,
      owned_by: 'qwen',
      root: m.id,
      capabilities: { thinking: m.thinking, search: m.search, vision: m.vision, reasoning: m.thinking, web_search: m.search },
    }
    if (m.contextLength !== undefined) e.context_length = m.contextLength
    return e
  }

  /** Failed fetches are retried at most this often. */
  private static readonly RETRY_MS = 30_000
  private lastFailure = -Infinity

  private stale (): boolean {
    const now = this.opts.now()
    if (now - this.lastFailure < ModelCatalog.RETRY_MS) return false
    return this.snapshot.source === 'builtin' || now - this.snapshot.fetchedAt >= this.opts.ttlMs
  }

  /**
   * Refresh when stale. Concurrent callers share one upstream call; failures keep the old list. Once
   * an upstream list exists, a stale one is served while the refresh runs in the background.
   */
  async refresh (force = false): Promise<void> {
    if (!this.inflight && (force || this.stale())) {
      this.inflight = (async () => {
        try {
          const list = await this.opts.fetch()
          if (list.length === 0) throw new Error('the upstream model list is empty')
          this.snapshot = this.build(list.map(modelInfo), 'upstream', this.opts.now())
        } catch (err) {
          this.lastFailure = this.opts.now()
          this.opts.onError(err)
        } finally {
          this.inflight = undefined
        }
      })()
    }
    if (this.inflight && (force || this.snapshot.source === 'builtin')) await this.inflight
  }

  /** Wait for a background refresh, if one is running (tests, shutdown). */
  async settled (): Promise<void> { await this.inflight }

  async list (): Promise<OpenAIModel[]> {
    await this.refresh()
    return this.snapshot.listing
  }

  async get (id: string): Promise<OpenAIModel | undefined> {
    await this.refresh()
    return this.snapshot.listing.find((m) => m.id === id)
  }

  /** Resolve a requested name, or throw 404 `model_not_found`. */
  async resolve (requested: string): Promise<ResolvedModel> {
    await this.refresh()
    const target = this.opts.aliases[requested] ?? requested
    const { base, thinking, search } = parseModelName(target)
    const m = this.snapshot.models.get(base)
    if (!m && this.snapshot.source === 'builtin') {
      // The upstream list could not be fetched: trust the name rather than fail the request only
      // because of that (the upstream itself will refuse a model it does not have).
      return { requested, base, thinking, search, chatType: search ? 'search' : 't2t', capabilities: { thinking, search, vision: false } }
    }
    if (!m || (thinking && !m.thinking) || (search && !m.search)) {
      throw new ModelNotFoundError(requested)
    }
    return { requested, base, thinking, search, chatType: search ? 'search' : 't2t', capabilities: { thinking: m.thinking, search: m.search, vision: m.vision } }
  }
}
