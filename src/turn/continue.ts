/**
 * Running a turn in a conversation's own upstream chat: a lease on the identity that owns the chat
 * (never another one: the chat is that account's), one attempt without failover, and a logged
 * fallback (the caller then folds into a new chat) when the identity cannot serve or the upstream
 * refuses the turn.
 */
import { GatewayError, UpstreamError } from '../errors.js'
import { abortReason } from '../lifecycle.js'
import type { IdentityPool } from '../pool.js'
import type { TokenService } from '../tokens.js'
import { ClientLeaseSource, PoolLeaseSource, type Caller, type CredentialLease, type LeaseSource } from './lease.js'
import { withIdentity } from './open.js'
import type { ConversationTurn } from './plan.js'

/** A lease source for exactly the identity that owns the chat, or undefined when it cannot serve right now. */
export function ownerLease (caller: Caller, identity: string | undefined, pool: IdentityPool, tokens: TokenService): LeaseSource | undefined {
  if (caller.kind === 'client') return new ClientLeaseSource(tokens, caller.token, caller.cookie)
  const i = identity === undefined ? undefined : pool.get(identity)
  if (!i || i.token === undefined || pool.eligibility(i).kind !== 'ready') return undefined
  const others = new Set(pool.identities.filter((x) => x.id !== i.id).map((x) => x.id))
  const one = new PoolLeaseSource(pool, tokens)
  // No failover: `exhausted` is never reached with one attempt.
  return { failover: false, acquire: async () => await one.acquire(others), exhausted: one.exhausted.bind(one) }
}

/** Whether a failure lets the request fold into a new chat (an upstream or client-facing error, not a gateway bug or an abort). */
export function canFallBack (err: unknown, signal: AbortSignal): err is UpstreamError | GatewayError {
  return !abortReason(signal) && (err instanceof UpstreamError || err instanceof GatewayError)
}

/**
 * `attempt` under the owner's lease, or undefined after a fallback (logged; an entry whose chat the
 * upstream refused is abandoned). The lease comes back unreleased on success.
 */
export async function inOwnChat<T> (
  conv: ConversationTurn,
  source: LeaseSource | undefined,
  signal: AbortSignal,
  attempt: (lease: CredentialLease) => Promise<T>,
  onLease: (lease: CredentialLease) => void,
): Promise<{ lease: CredentialLease; value: T } | undefined> {
  if (!source) {
    await conv.fallback('identity_unavailable', false)
    return undefined
  }
  try {
    return await withIdentity(source, signal, 0, attempt, { onLease })
  } catch (err) {
    if (!canFallBack(err, signal)) throw err
    await conv.fallback(`upstream refused the continuation: ${err.message}`, true, err)
    return undefined
  }
}
