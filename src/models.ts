/**
 * The model catalogue: the upstream list (cached with a TTL, last good list kept on failure, a
 * built-in list when nothing was ever fetched), expanded into the OpenAI-visible variants
 * `<id>`, `<id>-thinking`, `<id>-search`, `<id>-thinking-search`, plus configured aliases.
 */
import { ModelNotFoundError } from './errors.js'
import { modelInfo, type ChatType, type ModelInfo, type UpstreamModel } from './upstream/protocol.js'

export interface ModelCapabilities { thinking: boolean; search: boolean; vision: boolean }

/** A media variant: `-image` (t2i), `-image_edit` (also `-image-edit`), `-video` (t2v). */
export type MediaVariant = 'image' | 'image_edit' | 'video'
const MEDIA_SUFFIXES: ReadonlyArray<[string, MediaVariant]> = [['-image_edit', 'image_edit'], ['-image-edit', 'image_edit'], ['-image', 'image'], ['-video', 'video']]
const MEDIA_CHAT: Record<MediaVariant, 't2i' | 'image_edit' | 't2v'> = { image: 't2i', image_edit: 'image_edit', video: 't2v' }
const CANONICAL_MEDIA: Record<MediaVariant, string> = { image: '-image', image_edit: '-image_edit', video: '-video' }

/** `x-image` / `x-image_edit` / `x-image-edit` / `x-video` → base and variant (never combined with -thinking/-search). */
export function mediaVariant (name: string): { base: string; media: MediaVariant } | undefined {
  for (const [suffix, media] of MEDIA_SUFFIXES) {
    if (name.endsWith(suffix) && name.length > suffix.length) return { base: name.slice(0, -suffix.length), media }
  }
  return undefined
}

/** What a requested model name resolves to. */
export interface ResolvedModel {
  /** The name the client asked for (echoed back in responses). */
  requested: string
  /** The upstream model id (a dated id when the upstream lists one under a clean name). */
  base: string
  /**
   * The upstream refuses thinking off for this model (`think_skip.enable === false`): thinking is sent
   * on whatever the name or `reasoning_effort` say, so reasoning shows even under the base id.
   */
  mustThink?: boolean
  thinking: boolean
  search: boolean
  chatType: ChatType
  capabilities: ModelCapabilities
  /** `-image`, `-image_edit` or `-video`: a generation model (chat answers are Markdown links). */
  media?: MediaVariant
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
  { id: 'qwen3-max', created: 1758240000, thinking: true, search: true, vision: true, contextLength: 262144, media: { t2i: true, image_edit: true, t2v: true } },
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
  /**
   * Fetch the upstream list; errors are reported through `onError` and the old list is kept. The
   * signal aborts when the catalogue closes: the fetch must give up then (shutdown never waits for it).
   */
  fetch: (signal: AbortSignal) => Promise<UpstreamModel[]>
  onError: (err: unknown) => void
  /**
   * How long a caller (a completion, `GET /v1/models`) waits for a fetch that is running while
   * only the built-in list is known; after that it is served from the built-in list and the fetch
   * carries on in the background. Default 1500 ms.
   */
  waitBudgetMs?: number
  /**
   * An alias whose target the fetched upstream list does not serve (unknown model or a variant it
   * lacks). Called once per alias for each distinct fetched list.
   */
  onUnknownAlias?: (alias: string, target: string) => void
}

export interface WaitOptions {
  /** The caller's cancellation (client gone, request timeout): waiting stops at once and its reason is thrown. */
  signal?: AbortSignal | undefined
}

/** The default of `CatalogOptions.waitBudgetMs`. */
export const MODEL_LIST_WAIT_MS = 1500

interface Snapshot {
  models: Map<string, ModelInfo>
  listing: OpenAIModel[]
  fetchedAt: number
  source: 'upstream' | 'builtin'
}

/** A requested name matched against a list: the model and the variant flags. */
interface Match { base: string; thinking: boolean; search: boolean; media?: MediaVariant; m: ModelInfo | undefined }

/** `name` against `models`: an exact id first, then a media variant, then base and suffixes (either order). */
function match (models: Map<string, ModelInfo>, name: string): Match {
  const exact = models.get(name)
  if (exact) return { base: name, thinking: false, search: false, m: exact }
  const mv = mediaVariant(name)
  if (mv) return { base: mv.base, thinking: false, search: false, media: mv.media, m: models.get(mv.base) }
  const { base, thinking, search } = parseModelName(name)
  return { base, thinking, search, m: models.get(base) }
}

/** The match names a variant its model has. */
function serves (x: Match): x is Match & { m: ModelInfo } {
  return x.m !== undefined && (!x.thinking || x.m.thinking) && (!x.search || x.m.search) && (!x.media || x.m.media?.[MEDIA_CHAT[x.media]] === true)
}

/** The variant's id in the listing (`-thinking` before `-search`; `-image_edit` with the underscore). */
function canonicalId (x: Match & { m: ModelInfo }): string {
  if (x.media) return x.m.id + CANONICAL_MEDIA[x.media]
  return x.m.id + (x.thinking ? SUFFIX_THINKING : '') + (x.search ? SUFFIX_SEARCH : '')
}

function abortError (signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

export class ModelCatalog {
  private snapshot: Snapshot
  private inflight: Promise<void> | undefined
  /** Aborted by `close()`: cancels the running fetch and every wait for it. */
  private readonly closer = new AbortController()
  private readonly waitBudgetMs: number
  /** The fetched list whose unknown aliases were last reported (one warning per distinct list). */
  private aliasesCheckedFor = ''

  constructor (private readonly opts: CatalogOptions) {
    this.waitBudgetMs = opts.waitBudgetMs ?? MODEL_LIST_WAIT_MS
    this.snapshot = this.build(BUILTIN_MODELS, 'builtin', 0)
  }

  get source (): 'upstream' | 'builtin' { return this.snapshot.source }

  private build (given: readonly ModelInfo[], source: Snapshot['source'], fetchedAt: number): Snapshot {
    // A dated id whose clean name another model already has keeps its dated id.
    const plain = new Set(given.filter((m) => m.upstreamId === undefined).map((m) => m.id))
    const seen = new Set<string>()
    const list: ModelInfo[] = []
    for (const m of given) {
      let e = m
      if (m.upstreamId !== undefined && (plain.has(m.id) || seen.has(m.id))) {
        e = { ...m, id: m.upstreamId }
        delete e.upstreamId
      }
      seen.add(e.id)
      list.push(e)
    }
    const models = new Map(list.map((m) => [m.id, m]))
    // Both forms are accepted in requests: the clean name and the dated id.
    for (const m of list) if (m.upstreamId !== undefined && !models.has(m.upstreamId)) models.set(m.upstreamId, m)
    const listing: OpenAIModel[] = []
    for (const m of list) {
      const { thinking, search } = m
      const variants = [m.id]
      if (thinking) variants.push(m.id + SUFFIX_THINKING)
      if (search) variants.push(m.id + SUFFIX_SEARCH)
      if (thinking && search) variants.push(m.id + SUFFIX_THINKING + SUFFIX_SEARCH)
      if (m.media?.t2i) variants.push(m.id + CANONICAL_MEDIA.image)
      if (m.media?.image_edit) variants.push(m.id + CANONICAL_MEDIA.image_edit)
      if (m.media?.t2v) variants.push(m.id + CANONICAL_MEDIA.video)
      for (const id of variants) listing.push(this.entry(id, m))
    }
    const unknown: Array<[string, string]> = []
    for (const [alias, target] of Object.entries(this.opts.aliases)) {
      const x = match(models, target)
      if (serves(x)) listing.push({ ...this.entry(alias, x.m), alias_for: target })
      else unknown.push([alias, target])
    }
    if (source === 'upstream' && unknown.length > 0) {
      const key = listing.map((e) => e.id).join('\n')
      if (key !== this.aliasesCheckedFor) {
        this.aliasesCheckedFor = key
        for (const [alias, target] of unknown) this.opts.onUnknownAlias?.(alias, target)
      }
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
   * Start a fetch when the list is stale (or `force`), unless one is running or the catalogue is
   * closed; resolves when the running fetch, if any, has finished (it never rejects: failures go to
   * `onError` and keep the old list).
   */
  async refresh (force = false): Promise<void> {
    const signal = this.closer.signal
    if (!this.inflight && !signal.aborted && (force || this.stale())) {
      this.inflight = (async () => {
        try {
          const list = await this.opts.fetch(signal)
          if (signal.aborted) return
          if (list.length === 0) throw new Error('the upstream model list is empty')
          this.snapshot = this.build(list.map(modelInfo), 'upstream', this.opts.now())
        } catch (err) {
          if (signal.aborted) return // closing: not a failure of the upstream
          this.lastFailure = this.opts.now()
          this.opts.onError(err)
        } finally {
          this.inflight = undefined
        }
      })()
    }
    await this.inflight
  }

  /** Wait for a background refresh, if one is running (tests). */
  async settled (): Promise<void> { await this.inflight }

  /**
   * Stop: abort the running fetch (its result is discarded), release everyone waiting for it and
   * start no new one. Does not wait for the fetch to unwind.
   */
  close (): void {
    this.closer.abort(new Error('the model catalogue is closed'))
  }

  /**
   * The current list, refreshed when stale. Once an upstream list exists, a stale one is served while
   * the refresh runs in the background. While only the built-in list is known, wait for the running
   * fetch, but at most `waitBudgetMs`, and not past the caller's signal (then its reason is thrown) or
   * the catalogue's close. The fetch itself goes on for the cache.
   */
  private async current (o: WaitOptions): Promise<Snapshot> {
    const signal = o.signal
    if (signal?.aborted) throw abortError(signal)
    void this.refresh()
    const pending = this.inflight
    if (pending && this.snapshot.source === 'builtin' && this.waitBudgetMs > 0) {
      let timer: NodeJS.Timeout | undefined
      let onAbort: (() => void) | undefined
      const closer = this.closer.signal
      try {
        await Promise.race([
          pending,
          new Promise<void>((resolve, reject) => {
            timer = setTimeout(resolve, this.waitBudgetMs)
            onAbort = () => {
              if (signal?.aborted) reject(abortError(signal))
              else resolve()
            }
            signal?.addEventListener('abort', onAbort, { once: true })
            closer.addEventListener('abort', onAbort, { once: true })
          }),
        ])
      } finally {
        clearTimeout(timer)
        if (onAbort) {
          signal?.removeEventListener('abort', onAbort)
          closer.removeEventListener('abort', onAbort)
        }
      }
    }
    return this.snapshot
  }

  async list (o: WaitOptions = {}): Promise<OpenAIModel[]> {
    return (await this.current(o)).listing
  }

  /** An entry of the listing; a variant named with its suffixes in the other order is found too (and keeps the requested id). */
  async get (id: string, o: WaitOptions = {}): Promise<OpenAIModel | undefined> {
    const { listing, models } = await this.current(o)
    const exact = listing.find((m) => m.id === id)
    if (exact) return exact
    const x = match(models, id)
    if (!serves(x)) return undefined
    const canonical = canonicalId(x)
    const entry = listing.find((m) => m.id === canonical)
    return entry && { ...entry, id }
  }

  /**
   * Resolve a requested name, or throw 404 `model_not_found`. Waits for the model list at most
   * `waitBudgetMs` (see `current`); when `o.signal` aborts before or while waiting, throws its reason.
   */
  async resolve (requested: string, o: WaitOptions = {}): Promise<ResolvedModel> {
    const { models, source } = await this.current(o)
    const target = (Object.hasOwn(this.opts.aliases, requested) ? this.opts.aliases[requested]! : requested)
    const x = match(models, target)
    const { base, thinking, search, media } = x
    const chatType: ChatType = media ? MEDIA_CHAT[media] : search ? 'search' : 't2t'
    const variant = media ? { media } : {}
    if (!x.m && source === 'builtin') {
      // The upstream list could not be fetched: trust the name rather than fail the request only
      // because of that (the upstream itself will refuse a model it does not have).
      return { requested, base, thinking, search, chatType, capabilities: { thinking, search, vision: false }, ...variant }
    }
    if (!serves(x)) throw new ModelNotFoundError(requested)
    const m = x.m
    return {
      requested, base: m.upstreamId ?? m.id, thinking, search, chatType, capabilities: { thinking: m.thinking, search: m.search, vision: m.vision },
      ...(m.mustThink && !media ? { mustThink: true } : {}), ...variant,
    }
  }
}
