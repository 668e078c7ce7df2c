/** The probe's upstream client: built exactly as the gateway builds its own (`connectUpstream`). */
import { DEFAULTS, type ResolvedOptions } from '../options.js'
import { connectUpstream, type UpstreamConnection } from '../upstream/connect.js'

export type ProbeClient = UpstreamConnection

export function probeClient (cfg: Pick<ResolvedOptions, 'qwenBaseUrl' | 'proxyUrl' | 'upstreamConnectTimeoutMs' | 'upstreamFirstByteTimeoutMs' | 'upstreamIdleTimeoutMs' | 'maxBufferBytes'> & Partial<Pick<ResolvedOptions, 'upstreamWebVersion' | 'upstreamBodyLimitBytes'>>): ProbeClient {
  return connectUpstream({ ...cfg, dispatcher: undefined, upstreamWebVersion: cfg.upstreamWebVersion ?? DEFAULTS.upstreamWebVersion, upstreamBodyLimitBytes: cfg.upstreamBodyLimitBytes ?? DEFAULTS.upstreamBodyLimitBytes, upstreamMaxConnections: DEFAULTS.upstreamMaxConnections, upstreamQueueTimeoutMs: DEFAULTS.upstreamQueueTimeoutMs })
}
