/**
 * The gateway's Prometheus metrics, on a registry of their own (never prom-client's global one, so
 * that two gateways in one process do not collide). Framework-free: the metrics plugin feeds them
 * from the event surface and its hooks.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { PoolCounts } from './schemas.js'

/** Seconds, from 50 ms to 5 minutes (first tokens of thinking models take long). */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300]

/** Error codes of upstream failures (`src/errors.ts` `mapKind`) → the kind they stand for. */
export const UPSTREAM_KIND_BY_CODE: Readonly<Record<string, string>> = {
  rate_limit_exceeded: 'rate_limited',
  insufficient_quota: 'rate_limited',
  upstream_challenge: 'challenge',
  upstream_auth_failed: 'auth_failed',
  upstream_bad_request: 'bad_request',
  upstream_timeout: 'timeout',
  upstream_error: 'upstream_error',
  upstream_empty_answer: 'empty_answer',
  upstream_response_too_large: 'limit',
  no_upstream_identity: 'no_identity',
  gateway_overloaded: 'overloaded',
}

/** What the gauges read when Prometheus scrapes. */
export interface MetricSources {
  poolCounts: () => PoolCounts
  /** Identities that cannot serve now, by reason (disabled, rate_limited, challenge, auth_refused, breaker, no_token). */
  blocked: () => Record<string, number>
  /** Long requests (completions) in progress. */
  inProgress: () => number
  /** Upstream requests holding a connection slot, and waiting for one (UPSTREAM_MAX_CONNECTIONS). */
  upstream: () => { inUse: number; queued: number }
  /** Where shared state lives now (`memory`, `redis`, `degraded-local`) and this replica's name. */
  store?: () => { mode: string; replica: string | undefined }
}

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'route' | 'method' | 'status' | 'model' | 'key'>
  readonly ttft: Histogram<'model' | 'stream'>
  readonly duration: Histogram<'model' | 'stream'>
  readonly tokens: Counter<'model' | 'kind'>
  readonly activeStreams: Gauge
  readonly inProgress: Gauge
  readonly upstreamErrors: Counter<'kind'>
  readonly failovers: Counter
  readonly transitions: Counter<'to'>
  readonly cooldowns: Counter<'kind'>
  readonly tokenRefreshes: Counter<'result'>
  readonly chats: Counter<'event'>
  readonly chatDeletions: Counter<'result'>
  readonly uploads: Counter<'kind' | 'result'>
  readonly uploadBytes: Counter<'kind'>

  constructor (sources: MetricSources) {
    const registers = [this.registry]
    this.requests = new Counter({ name: 'qwen_requests_total', help: 'Requests by route, method, status, model (completions) and API key name', labelNames: ['route', 'method', 'status', 'model', 'key'], registers })
    this.ttft = new Histogram({ name: 'qwen_completion_ttft_seconds', help: 'Time to the first upstream token of a completion', labelNames: ['model', 'stream'], buckets: LATENCY_BUCKETS, registers })
    this.duration = new Histogram({ name: 'qwen_completion_duration_seconds', help: 'Total duration of a completion', labelNames: ['model', 'stream'], buckets: LATENCY_BUCKETS, registers })
    this.tokens = new Counter({ name: 'qwen_tokens_total', help: 'Tokens by model and kind (prompt, completion, reasoning)', labelNames: ['model', 'kind'], registers })
    this.activeStreams = new Gauge({ name: 'qwen_active_streams', help: 'Streamed (SSE) responses in progress', registers })
    this.inProgress = new Gauge({ name: 'qwen_requests_in_progress', help: 'Completion requests in progress', registers, collect () { this.set(sources.inProgress()) } })
    new Gauge({ name: 'qwen_upstream_requests_in_flight', help: 'Upstream requests holding one of the UPSTREAM_MAX_CONNECTIONS slots', registers, collect () { this.set(sources.upstream().inUse) } })
    new Gauge({ name: 'qwen_upstream_requests_queued', help: 'Upstream requests waiting for a free connection slot (refused with gateway_overloaded after UPSTREAM_QUEUE_TIMEOUT_MS)', registers, collect () { this.set(sources.upstream().queued) } })
    this.upstreamErrors = new Counter({ name: 'qwen_upstream_errors_total', help: 'Upstream failures by kind (rate_limited, challenge, auth_failed, bad_request, upstream_error, timeout, …), failed-over attempts included', labelNames: ['kind'], registers })
    this.failovers = new Counter({ name: 'qwen_failovers_total', help: 'Attempts that failed before anything reached the client and were retried on another account', registers })
    const identities = new Gauge({
      name: 'qwen_identities', help: 'Upstream accounts by state (a refused credential counts as degraded)', labelNames: ['state'], registers,
      collect () {
        const c = sources.poolCounts()
        identities.set({ state: 'healthy' }, c.healthy)
        identities.set({ state: 'degraded' }, c.degraded)
        identities.set({ state: 'down' }, c.down)
      },
    })
    const blocked = new Gauge({
      name: 'qwen_identities_blocked', help: 'Upstream accounts that cannot serve now, by reason', labelNames: ['reason'], registers,
      collect () {
        const b = sources.blocked()
        for (const reason of ['disabled', 'rate_limited', 'challenge', 'auth_refused', 'breaker', 'no_token']) blocked.set({ reason }, b[reason] ?? 0)
      },
    })
    const storeMode = new Gauge({
      name: 'qwen_store_mode', help: 'Where shared state lives: 1 for the current mode (memory, redis, degraded-local: Redis unreachable), 0 for the others', labelNames: ['mode', 'replica'], registers,
      collect () {
        const s = sources.store?.() ?? { mode: 'memory', replica: undefined }
        for (const mode of ['memory', 'redis', 'degraded-local']) storeMode.set({ mode, replica: s.replica ?? '' }, mode === s.mode ? 1 : 0)
      },
    })
    this.transitions = new Counter({ name: 'qwen_identity_transitions_total', help: 'Breaker state changes of upstream accounts, by new state', labelNames: ['to'], registers })
    this.cooldowns = new Counter({ name: 'qwen_identity_cooldowns_total', help: 'Cooldowns started, by kind (rate_limited, challenge, breaker)', labelNames: ['kind'], registers })
    this.tokenRefreshes = new Counter({ name: 'qwen_token_refreshes_total', help: 'Upstream token fetches by result', labelNames: ['result'], registers })
    this.chats = new Counter({ name: 'qwen_upstream_chats_total', help: 'Upstream chats created and deleted', labelNames: ['event'], registers })
    this.chatDeletions = new Counter({ name: 'qwen_chat_deletions_total', help: 'Chat deletions by the chat-deletion plugin, by result (deleted, gone: already deleted, failed: after its retries)', labelNames: ['result'], registers })
    this.uploads = new Counter({ name: 'qwen_uploads_total', help: 'Attachments put on the upstream, by kind and result (uploaded, cached: served by the upload cache, failed)', labelNames: ['kind', 'result'], registers })
    this.uploadBytes = new Counter({ name: 'qwen_upload_bytes_total', help: 'Bytes uploaded to the upstream object store, by kind', labelNames: ['kind'], registers })
  }

  /** The Prometheus text exposition. */
  text (): Promise<string> {
    return this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }
}
