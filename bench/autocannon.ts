/**
 * A typed door onto autocannon's programmatic API (the package ships no types). Only the options
 * and result fields the benchmark uses are declared.
 */
import { createRequire } from 'node:module'

export interface AutocannonOptions {
  url: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  headers?: Record<string, string>
  body?: string
  connections?: number
  /** Seconds. */
  duration?: number
  /** Seconds without a response before a request counts as a timeout. */
  timeout?: number
  pipelining?: number
  /** Called with each complete response body; `false` counts the response as a mismatch. */
  verifyBody?: (body: string) => boolean
  title?: string
}

export interface Histogram {
  mean: number
  stddev: number
  min: number
  max: number
  total: number
  p50: number
  p90: number
  p99: number
  p99_9?: number
}

export interface AutocannonResult {
  title?: string
  url: string
  connections: number
  /** Seconds (wall time of the run). */
  duration: number
  start: Date
  finish: Date
  errors: number
  timeouts: number
  mismatches: number
  non2xx: number
  resets: number
  '2xx': number
  statusCodeStats: Record<string, { count: number }>
  /** Milliseconds. */
  latency: Histogram & { totalCount: number }
  /** Per-second samples; `total` is the number of completed requests. */
  requests: Histogram & { sent: number }
  /** Bytes per second samples; `total` is the number of bytes read. */
  throughput: Histogram
}

/** Without a callback autocannon returns an EventEmitter that is also a thenable. */
type Autocannon = (opts: AutocannonOptions) => PromiseLike<AutocannonResult>

const require = createRequire(import.meta.url)
const autocannon = require('autocannon') as Autocannon

/** Run one load test and resolve with autocannon's aggregated result. */
export function runAutocannon (opts: AutocannonOptions): Promise<AutocannonResult> {
  return Promise.resolve(autocannon(opts))
}
