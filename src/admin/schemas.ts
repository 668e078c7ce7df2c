/** TypeBox schemas of the dashboard's JSON API (`/admin/api/*`). Nothing secret in any of them. */
import { Type, type Static } from '@sinclair/typebox'

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()])

export const StatusSchema = Type.Union(['healthy', 'degraded', 'down', 'cooldown', 'disabled', 'no_token'].map((s) => Type.Literal(s)))

export const AdminIdentitySchema = Type.Object({
  id: Type.String(),
  /** Masked: the id and where it came from, `a***@example.com` for sign-in accounts. */
  label: Type.String(),
  kind: Type.String(),
  status: StatusSchema,
  /** Added from the dashboard (removable); configured ones are read-only. */
  runtime: Type.Boolean(),
  blockedBy: Nullable(Type.String()),
  failures: Type.Integer(),
  inFlight: Type.Integer(),
  proxy: Type.Boolean(),
  /** Absolute times (ms since epoch): the page counts down from them with `serverTime`. */
  tokenExpiresAt: Nullable(Type.Integer()),
  cooldownUntil: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  lastErrorAt: Nullable(Type.Integer()),
  lastSuccess: Nullable(Type.Integer()),
})
export type AdminIdentity = Static<typeof AdminIdentitySchema>

export const AdminStateSchema = Type.Object({
  serverTime: Type.Integer(),
  version: Type.String(),
  startedAt: Type.Integer(),
  replicaId: Nullable(Type.String()),
  storeMode: Type.String(),
  /** Runtime accounts survive a restart (sealed with STATE_SECRET in the shared store); false: until restart. */
  accountsPersistent: Type.Boolean(),
  serverMode: Type.Boolean(),
  counts: Type.Object({
    total: Type.Integer(), healthy: Type.Integer(), degraded: Type.Integer(), down: Type.Integer(),
    cooldown: Type.Integer(), disabled: Type.Integer(), no_token: Type.Integer(),
  }),
  identities: Type.Array(AdminIdentitySchema),
})
export type AdminState = Static<typeof AdminStateSchema>

const Opt = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer> | ReturnType<typeof Type.Boolean>>(t: T) => Type.Union([t, Type.Null()])

export const RequestRecordSchema = Type.Object({
  at: Type.Integer(),
  requestId: Type.String(),
  key: Opt(Type.String()),
  route: Type.String(),
  model: Opt(Type.String()),
  stream: Opt(Type.Boolean()),
  status: Type.Integer(),
  ttftMs: Opt(Type.Integer()),
  durationMs: Type.Integer(),
  tokensIn: Opt(Type.Integer()),
  tokensOut: Opt(Type.Integer()),
  identity: Opt(Type.String()),
  tried: Type.Array(Type.String()),
  error: Opt(Type.String()),
  replica: Opt(Type.String()),
})

export const RequestsQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 200 })),
  model: Type.Optional(Type.String({ maxLength: 200 })),
  identity: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('error')])),
})

export const RequestsResponseSchema = Type.Object({ serverTime: Type.Integer(), requests: Type.Array(RequestRecordSchema) })

export const IdentityParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) })

export const ActionResponseSchema = Type.Object({
  ok: Type.Boolean(),
  message: Type.String(),
  /** `test`: how long the request through the identity took. */
  latencyMs: Type.Optional(Type.Integer()),
  identity: AdminIdentitySchema,
})

export const AccountsResponseSchema = Type.Object({
  persistent: Type.Boolean(),
  accounts: Type.Array(Type.Object({ id: Type.String(), label: Type.String(), status: StatusSchema, addedAt: Type.Integer() })),
})

export const AddAccountsBodySchema = Type.Object({
  /** Cookies or `email:password`, one per line (blank lines and `#` comments skipped). */
  accounts: Type.String({ minLength: 1, maxLength: 200_000 }),
})

export const AddAccountsResponseSchema = Type.Object({
  persistent: Type.Boolean(),
  results: Type.Array(Type.Object({
    line: Type.Integer(), ok: Type.Boolean(), id: Type.Optional(Type.String()), label: Type.Optional(Type.String()), error: Type.Optional(Type.String()),
  })),
})

export const DeleteAccountResponseSchema = Type.Object({ ok: Type.Boolean(), id: Type.String() })
