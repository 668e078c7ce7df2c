/** Public types of the upstream simulator (see `index.ts` for the overview). */
import type { SimLatencyOptions } from './latency.js'

export type { SimLatencyOptions, SimProfile } from './latency.js'

export interface SimAccountSpec {
  email?: string
  password?: string
  tokenTtlSeconds?: number
  name?: string
}

export interface SimAccount {
  /** The user uuid (the JWT's `id`). */
  id: string
  email: string
  /** The plain password; `/api/v1/auths/signin` expects its sha256 hex. */
  password: string
  name: string
  /** Browser-like cookie string: `token=<session jwt>; ssxmod_itna=<random>; cna=<random>`. */
  cookie: string
}

export interface SimulatorOptions {
  /**
   * Which site's rules to enforce (`SIM_SITE`). `2026` (default): PROTOCOL-2026 §7 — the
   * `source`/`version`/`x-request-id` headers on chats/new and completions, the `version: "2.1"` body,
   * `chatId`/`parentId` equal to `chat_id`/`parent_id`, forced thinking for `think_skip` models
   * (`invalid_input`), the captcha for bodies of 128 KiB or more, `/api/v2/models/`, dated ids.
   * `2025`: the older rules only.
   */
  site?: '2025' | '2026'
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0 (ephemeral). */
  port?: number
  /** Default 2: demo1@sim.local / demo-password-1, demo2@sim.local / demo-password-2, … */
  demoAccounts?: number
  /** Extra accounts, created after the demo accounts. */
  accounts?: SimAccountSpec[]
  /** JWT signing secret; random per simulator unless given. */
  secret?: string
  /** Injectable clock in milliseconds, default `Date.now`. */
  now?: () => number
  /** Default 7 days. */
  tokenTtlSeconds?: number
  /** Append `data: [DONE]` to streams. Default false (the upstream just closes, protocol §3.1). */
  emitDone?: boolean
  /** Characters (code points) of text per frame, default 6. */
  frameChars?: number
  /** Maximum retained log entries (ring buffer), default 1000. */
  logLimit?: number
  /** 2026 document parsing (`/api/v2/files/parse`) takes this long, default 0 (done at the first status poll). */
  parseDelayMs?: number
  /** How long a t2v task runs, default 300 ms (a scenario's `videoMs` wins). */
  videoMs?: number
  /**
   * Latency profile (`SIM_PROFILE`, `latency.ts`): `instant` by default; `realistic` delays
   * `chats/new` (~150 ms), the first completion frame (~300 ms) and every further frame (~20 ms).
   */
  latency?: SimLatencyOptions
}

export interface SimLogEntry {
  seq: number
  time: number
  method: string
  path: string
  query: Record<string, string>
  /** Email of the authenticated account, null when unauthenticated. */
  account: string | null
  /** Lower-case names; `authorization`, `cookie` and `x-oss-security-token` masked to their first 12 characters + '…'. */
  headers: Record<string, string>
  /** The parsed JSON body, undefined when there was none (or it was not JSON). */
  body: unknown
  /** 0 until the status line is written. */
  status: number
  /** `data:` frames written (JSON frames, not counting `[DONE]`). */
  framesSent: number
  /** The client closed the connection before the simulator finished. */
  aborted: boolean
  /** The simulator finished the response normally. */
  finished: boolean
  /** The exchange is over (finished, aborted by the client, or dropped by a scenario): not in flight. */
  closed: boolean
}

/** `sts`: the upload grant (`/api/v{1,2}/files/getstsToken`); `chats_delete`: the next `DELETE /api/v2/chats/{id}` (a chat that exists). */
export type ScenarioEndpoint = 'completions' | 'chats_new' | 'auths' | 'models' | 'sts' | 'chats_delete'

export type ScenarioFail =
  | 'rate_limited'
  | 'unauthorized'
  | 'unauthorized_401'
  | 'challenge_json'
  | 'challenge_html'
  | 'bad_request'
  | 'not_found'
  | { status: number; body?: string; contentType?: string }

/** One scripted behaviour, consumed by the account's next (valid) request to `endpoint`. */
export interface Scenario {
  /** Default 'completions'. `auths` covers both `/api/v1/auths/` and `/api/v1/auths/signin`. */
  endpoint?: ScenarioEndpoint
  fail?: ScenarioFail
  /** `num` of the RateLimited body (hours), default 10. */
  rateLimitHours?: number
  answer?: string
  /** Emitted only when `thinking_enabled` and the model can think. */
  reasoning?: string
  /** Force a web_search frame. */
  search?: boolean
  /** Delay before the status line and headers. */
  firstByteDelayMs?: number
  /** Delay between frames. */
  frameDelayMs?: number
  /**
   * Write the first k frames, pause (`pauseMs`, default 50), then write all the rest in one burst
   * (frames that arrive together with an error frame in one network chunk). Ignored together with
   * `frameDelayMs`, `splitBytes`, `dropAfterFrames` or `hang`.
   */
  pauseAfterFrames?: number
  pauseMs?: number
  /** Destroy the socket after k frames (response.created is frame 1). */
  dropAfterFrames?: number
  /** After k frames write an `{"error":…}` frame, then end. */
  errorAfterFrames?: number
  /** Default `{"error":{"code":"internal_error","details":"Internal error!"}}`. */
  errorFrame?: unknown
  /**
   * A second candidate (response_index "1") whose frames are interleaved with the first's;
   * `'reversed'`: the second candidate's `response.created` and frames come first.
   */
  interleave?: boolean | 'reversed'
  /** Write the body in writes of this many bytes, with a setImmediate between writes. */
  splitBytes?: number
  /** Override `emitDone` for this response. */
  done?: boolean
  /** Include `usage` in frames, default true. */
  usage?: boolean
  /**
   * Send every frame except the closing `answer`/`finished` one, then keep the connection open until
   * the client aborts or the simulator closes (idle-timeout tests).
   */
  hang?: boolean
  /**
   * After k frames and a pause (`pauseMs`, default 50), write short `data:` lines that never end the
   * event (no blank line) until the client goes away or the simulator closes (tests of the
   * gateway's SSE event cap).
   */
  floodAfterFrames?: number
  /** t2v: how long the task created by this request runs (default: the simulator's `videoMs`). */
  videoMs?: number
  /** t2v: the task fails at its end with this message. */
  videoFail?: string
}

export interface SimChatInfo {
  id: string
  model: string
  turns: number
  lastResponseId: string | null
  /** The user text of each turn in the chain, oldest first. */
  prompts: string[]
}

export interface Simulator {
  /** e.g. http://127.0.0.1:43210 */
  url: string
  accounts: SimAccount[]
  addAccount(spec?: SimAccountSpec): SimAccount
  queue(email: string, ...scenarios: Scenario[]): void
  /** Tokens minted by /auths or /signin so far become invalid; the cookie's session token stays valid. */
  revokeTokens(email: string): void
  /** Like revokeTokens, and the cookie's session token becomes invalid too. */
  expireSession(email: string): void
  log(): SimLogEntry[]
  clearLog(): void
  /** Clear scenario queues, the log and all chats (accounts and token state stay). */
  reset(): void
  /** The account's chats, oldest first. */
  chats(email: string): SimChatInfo[]
  /** TCP connections accepted since the simulator started (keep-alive reuse shows as few connections). */
  connections(): number
  close(): Promise<void>
}
