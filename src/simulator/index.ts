/**
 * Upstream simulator: a strict fake of chat.qwen.ai (protocol v2, see the protocol notes §1–§3, §9)
 * served over real sockets by `node:http`. The gateway's tests, the demo and the benchmarks run
 * against it. Everything lives in the object `startSimulator()` returns; `close()` destroys every
 * open socket.
 *
 * Upstream endpoints (strict: malformed requests get the upstream's error bodies)
 *   GET    /api/v1/auths/                      session user + freshly minted JWT; `token` cookie only
 *   POST   /api/v1/auths/signin                {email, password: sha256 hex} → same shape
 *   GET    /api/models                         {"data":[model…]}; no auth (a Bearer, if sent, must be valid)
 *   GET    /api/v2/models/                     (2026) the same list wrapped: {success, data:{data:[model…]}}
 *   POST   /api/v2/chats/new                   {models, chat_type, chat_mode, timestamp} → {success, data:{id}}
 *   POST   /api/v2/chat/completions?chat_id=   one user message → text/event-stream of frames
 *   GET    /api/v2/chats/?page=N               the account's chats, newest first, 20 per page
 *   GET    /api/v2/chats/<id>                  chat detail (ids and roles of the turns)
 *   DELETE /api/v2/chats/<id>                  {success:true, data:true}
 *   POST   /api/v2/files/getstsToken           upload grant (either field spelling), wrapped; `/api/v1/…` answers flat
 *   PUT    /qwen-webui-sim/<file_path>          the object store: OSS V1 signature, STS token, granted size and type
 *   GET    /qwen-webui-sim/<file_path>?key=     the stored object (the grant's `file_url`)
 *   POST   /api/v2/files/parse[/status]        (2026) document parsing, done after `parseDelayMs`
 * A completion's `files[]` must name objects this account uploaded (documents parsed, in 2026);
 * images go only to models with vision (`files.ts`).
 * Authenticated endpoints take `Authorization: Bearer <jwt>` (which wins when present) or the
 * `token=<jwt>` cookie.
 *
 * Site rules (`SimulatorOptions.site`, `SIM_SITE`): `2026` (default) enforces PROTOCOL-2026 §7 on top
 * of the 2025 rules: `source: web`, `version` and `x-request-id` headers on chats/new and completions
 * (else 200 + Bad_Request); `version: "2.1"`; `chatId`/`parentId`, when sent, equal to
 * `chat_id`/`parent_id`; thinking on for `think_skip` models (else `invalid_input`); a body of
 * 128 KiB or more gets the bare FAIL_SYS_USER_VALIDATE captcha JSON with HTTP 200; dated ids and
 * `think_skip` in the model list. `2025` keeps the older rules and list. JWTs are HS256 `{id, last_password_change, exp}`; signature and expiry are
 * checked on every request. Every upstream request is recorded in the log (`SimLogEntry`).
 *
 * Control routes (JSON in and out, no auth, not logged), for other processes (demo, CLI, benchmarks):
 *   GET    /__sim/accounts          → SimAccount[] (email, plain password, browser-like cookie)
 *   POST   /__sim/accounts          SimAccountSpec → SimAccount (409 if the email exists)
 *   POST   /__sim/scenarios         {email, scenarios: Scenario[]} → {queued}; each scenario is consumed
 *                                   by the account's next valid request to its `endpoint`
 *                                   ('completions' by default, or 'chats_new' | 'auths' | 'models' | 'sts')
 *   GET    /__sim/log[?since=seq]   → SimLogEntry[] with seq > since
 *   DELETE /__sim/log               clear the log
 *   POST   /__sim/reset             clear scenario queues, log and chats (accounts stay)
 *   POST   /__sim/revoke            {email}: tokens minted by /auths or /signin so far stop working (401);
 *                                   the cookie's session token still works, so a refresh recovers
 *   POST   /__sim/expire            {email}: as revoke, and the cookie's session token stops working too
 * Example:
 *   curl -X POST localhost:8787/__sim/scenarios -H 'content-type: application/json' \
 *     -d '{"email":"demo1@sim.local","scenarios":[{"fail":"rate_limited","rateLimitHours":2}]}'
 */
export { startSimulator } from './server.js'
export { defaultAnswer, defaultReasoning, estimateTokens } from './text.js'
export { latencyFromEnv, simLatency, REALISTIC } from './latency.js'
export type {
  Scenario, ScenarioEndpoint, ScenarioFail, SimAccount, SimAccountSpec, SimChatInfo, SimLogEntry, Simulator,
  SimulatorOptions, SimLatencyOptions, SimProfile,
} from './types.js'
