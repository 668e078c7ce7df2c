/**
 * The turn opener: run one upstream attempt under a credential lease, failing over to the next
 * identity while nothing has reached the client. An authentication failure refreshes the lease's
 * token and tries the same identity once more. The lease comes back unreleased on success: the
 * caller releases it with the final outcome.
 */
import { UpstreamError } from '../errors.js'
import { abortReason } from '../lifecycle.js'
import { transportError } from '../upstream/client.js'
import { outcomeOf, type CredentialLease, type LeaseSource } from './lease.js'

export interface OpenHooks {
  /** A lease was taken for an attempt (the access log names its identity). */
  onLease?: (lease: CredentialLease) => void
  /** An attempt failed and the next identity will be tried. */
  onFailover?: (lease: CredentialLease, err: UpstreamError, attempt: number) => void
}

export async function withIdentity<T> (
  source: LeaseSource,
  signal: AbortSignal,
  maxRetries: number,
  attempt: (lease: CredentialLease) => Promise<T>,
  hooks: OpenHooks = {},
): Promise<{ lease: CredentialLease; value: T }> {
  const tried = new Set<string>()
  let last: UpstreamError | undefined
  for (let n = 0; n <= maxRetries; n++) {
    const given = abortReason(signal)
    if (given) throw given
    let lease: CredentialLease
    try {
      lease = await source.acquire(tried, signal)
    } catch (err) {
      if (last && err instanceof UpstreamError) break
      throw transportError(err)
    }
    if (lease.identityId !== undefined) tried.add(lease.identityId)
    hooks.onLease?.(lease)
    try {
      await lease.prepare(signal)
      let refreshed = false
      for (;;) {
        try {
          return { lease, value: await attempt(lease) }
        } catch (err) {
          if (!(err instanceof UpstreamError) || err.kind !== 'auth_failed' || refreshed || abortReason(signal)) throw err
          refreshed = true
          await lease.refresh(err, signal)
        }
      }
    } catch (err) {
      // The client calls map their transport errors; anything else is a bug or a client-mode 401.
      const aborted = abortReason(signal)
      lease.release(aborted ? { kind: 'neutral' } : outcomeOf(err))
      if (aborted) throw aborted
      if (!(err instanceof UpstreamError)) throw err
      last = err
      if (!err.retryable || !source.failover) throw err
      if (n < maxRetries) hooks.onFailover?.(lease, err, n + 1)
    }
  }
  throw source.exhausted(last!)
}
