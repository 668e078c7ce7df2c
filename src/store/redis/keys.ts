/**
 * The shared store's key schema (SCALE-OUT §A3.3): every key carries one hash tag, `qg:{<ns>}:`,
 * so a namespace's keys stay in one slot. The store needs one primary (Redis Cluster is not
 * supported: some scripts derive key names from the prefix rather than declaring them). No prompt text, no secret
 * in clear: conversation keys are hashes that already include the caller's id.
 */
export class Keys {
  readonly prefix: string

  constructor (namespace: string) {
    this.prefix = `qg:{${namespace}}:`
  }

  /** Health records (hash: identity id → JSON record). */
  get health (): string { return this.prefix + 'pool:h' }
  /** The shared round-robin cursor. */
  get cursor (): string { return this.prefix + 'pool:rr' }
  /** Prefix of the one half-open trial per identity (string: owner, PX). */
  get probe (): string { return this.prefix + 'pool:probe:' }
  /** Pub/sub channel of identity changes. */
  get events (): string { return this.prefix + 'events' }
  /** Present while Redis holds our state; missing after a restart without persistence. */
  get alive (): string { return this.prefix + 'alive' }
  conv (key: string): string { return this.prefix + 'conv:' + key }
  get convPrefix (): string { return this.prefix + 'conv:' }
  /** Conversation keys by expiry (zset). */
  get convIndex (): string { return this.prefix + 'conv-idx' }
  /** Chats a live conversation continues in (zset: chatId → expiry). */
  get convChats (): string { return this.prefix + 'conv-chats' }
  chatLock (chatId: string): string { return this.prefix + 'chatlock:' + chatId }
  ready (key: string): string { return this.prefix + 'ready:' + key }
  get readyKeys (): string { return this.prefix + 'ready-keys' }
  get readyIds (): string { return this.prefix + 'ready-ids' }
  /** Ready chats handed out and not yet acknowledged by their taker (zset: chatId → Redis time of the take). */
  get readyTaken (): string { return this.prefix + 'ready-taken' }
  /** The same chats' JSON (hash: chatId → chat), for deleting the ones nobody acknowledged. */
  get readyTakenData (): string { return this.prefix + 'ready-taken-v' }
  get requests (): string { return this.prefix + 'reqlog' }
  get accounts (): string { return this.prefix + 'accounts' }
  upload (key: string): string { return this.prefix + 'upl:' + key }
  /** A video job (string: `<rank>:<sealed job>`, PX). */
  videoJob (id: string): string { return this.prefix + 'video:' + id }
  get rateLimit (): string { return this.prefix + 'rl:' }
  /** An identity's sealed token (hash: sealed, exp, ver). */
  token (id: string): string { return this.prefix + 'tok:' + id }
  tokenLease (id: string): string { return this.prefix + 'lease:refresh:' + id }
}
