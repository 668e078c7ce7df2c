/**
 * Media input for the faces: one resolver (with its SSRF-guarded fetcher) built from the options.
 * Whoever creates it closes it (the media-input plugin does, with the app).
 */
import { OptionsError, type ResolvedOptions } from '../options.js'
import { parseAllowList, type AllowList } from './address.js'
import { MediaFetcher } from './fetch.js'
import { MediaResolver } from './resolve.js'

export type { Attachment } from './attachment.js'
export { MediaResolver } from './resolve.js'

export interface MediaInput {
  resolver: MediaResolver
  /** Closes the fetcher's connections. */
  close: () => Promise<void>
}

/** `MEDIA_FETCH_ALLOW`, or an `OptionsError` naming the bad entry. */
export function allowListOption (value: ResolvedOptions['mediaFetchAllow']): AllowList {
  try {
    return parseAllowList(value)
  } catch (err) {
    throw new OptionsError('mediaFetchAllow', (err as Error).message)
  }
}

/** The resolver for `UPLOAD_MAX_BYTES`, `MEDIA_FETCH_TIMEOUT_MS` and `MEDIA_FETCH_ALLOW`. */
export function createMediaResolver (cfg: Pick<ResolvedOptions, 'uploadMaxBytes' | 'mediaFetchTimeoutMs' | 'mediaFetchAllow'> & Partial<Pick<ResolvedOptions, 'bodyLimitBytes'>>): MediaInput {
  const fetcher = new MediaFetcher({ maxBytes: cfg.uploadMaxBytes, timeoutMs: cfg.mediaFetchTimeoutMs, allow: allowListOption(cfg.mediaFetchAllow) })
  const resolver = new MediaResolver({ maxBytes: cfg.uploadMaxBytes, ...(cfg.bodyLimitBytes !== undefined ? { maxTotalBytes: cfg.bodyLimitBytes } : {}), fetcher })
  return { resolver, close: async () => { await fetcher.close() } }
}
