/**
 * The upload cache: which upstream file object already holds given bytes for given identity, so
 * identical bytes are uploaded once per identity. A small interface (a later issue moves it into the
 * shared store, `qwenStore`) and the in-memory implementation: entries expire after a TTL shorter
 * than the upstream URL's validity, and the cache is bounded in entries and bytes (oldest first out).
 */

export interface UploadCache {
  /** The file object stored under `key`, unless it expired. */
  get: (key: string) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>
  set: (key: string, file: Record<string, unknown>) => void | Promise<void>
}

/** A shared key-value part (`qwenStore.uploads`): undefined when missing or unreachable. */
export interface SharedValues {
  get: (key: string) => Promise<string | undefined>
  set: (key: string, value: string, ttlMs: number) => Promise<void>
}

/**
 * The upload cache shared between replicas: this process's memory first, then the shared store
 * (the same bytes sent through another replica for the same identity are not uploaded again).
 * A race between two replicas costs one duplicate upload, which is harmless.
 */
export class SharedUploadCache implements UploadCache {
  constructor (private readonly shared: SharedValues, private readonly local: MemoryUploadCache, private readonly ttlMs: number) {}

  async get (key: string): Promise<Record<string, unknown> | undefined> {
    const local = this.local.get(key)
    if (local) return local
    const raw = await this.shared.get(key)
    if (raw === undefined) return undefined
    const file = JSON.parse(raw) as Record<string, unknown>
    this.local.set(key, file)
    return file
  }

  async set (key: string, file: Record<string, unknown>): Promise<void> {
    if (this.ttlMs <= 0) return
    this.local.set(key, file)
    await this.shared.set(key, JSON.stringify(file), this.ttlMs)
  }
}

export interface MemoryUploadCacheOptions {
  ttlMs: number
  /** Most entries kept, default 1000. */
  maxEntries?: number
  /** Most bytes of stored file objects (their JSON), default 2 MiB. */
  maxBytes?: number
  now: () => number
}

interface Entry { json: string; expiresAt: number }

export class MemoryUploadCache implements UploadCache {
  private readonly entries = new Map<string, Entry>()
  private bytes = 0
  private readonly maxEntries: number
  private readonly maxBytes: number

  constructor (private readonly o: MemoryUploadCacheOptions) {
    this.maxEntries = o.maxEntries ?? 1000
    this.maxBytes = o.maxBytes ?? 2 * 1024 * 1024
  }

  get size (): number { return this.entries.size }

  private drop (key: string, e: Entry): void {
    this.entries.delete(key)
    this.bytes -= e.json.length
  }

  get (key: string): Record<string, unknown> | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    if (e.expiresAt <= this.o.now()) {
      this.drop(key, e)
      return undefined
    }
    // A copy each time: callers may change what they got.
    return JSON.parse(e.json) as Record<string, unknown>
  }

  set (key: string, file: Record<string, unknown>): void {
    if (this.o.ttlMs <= 0) return
    const old = this.entries.get(key)
    if (old) this.drop(key, old)
    const e = { json: JSON.stringify(file), expiresAt: this.o.now() + this.o.ttlMs }
    if (e.json.length > this.maxBytes) return
    this.entries.set(key, e)
    this.bytes += e.json.length
    // Map order is insertion order: the oldest go first.
    for (const [k, v] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break
      this.drop(k, v)
    }
  }
}
