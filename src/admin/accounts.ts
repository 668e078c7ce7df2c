/**
 * Accounts added at runtime through the dashboard (issue #14), kept in `qwenStore` so that every
 * replica serves them. The store only ever sees sealed blobs (sealed with `STATE_SECRET` by the
 * caller); without a secret the caller keeps them in memory until restart and never stores them.
 */

/** One runtime account as stored: its identity id and the sealed secret (cookie or e-mail:password). */
export interface SealedAccount { id: string; sealed: string; addedAt: number }

export interface AccountStore {
  list: () => Promise<SealedAccount[]>
  put: (a: SealedAccount) => Promise<void>
  /** True when it existed. */
  delete: (id: string) => Promise<boolean>
}

export class MemoryAccountStore implements AccountStore {
  private readonly accounts = new Map<string, SealedAccount>()

  async list (): Promise<SealedAccount[]> { return [...this.accounts.values()] }

  async put (a: SealedAccount): Promise<void> { this.accounts.set(a.id, a) }

  async delete (id: string): Promise<boolean> { return this.accounts.delete(id) }
}
