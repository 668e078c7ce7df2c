/**
 * TypeBox schemas for every route. Request schemas stay permissive (unknown fields are accepted and
 * kept: clients send many); response schemas allow extra fields so nothing is stripped.
 */
import { Type, type Static } from '@sinclair/typebox'

const open = { additionalProperties: true } as const

export const ErrorSchema = Type.Object({
  error: Type.Object({
    message: Type.String(),
    type: Type.String(),
    param: Type.Union([Type.String(), Type.Null()]),
    code: Type.Union([Type.String(), Type.Null()]),
  }),
})

export const ErrorResponses = { '4xx': ErrorSchema, '5xx': ErrorSchema } as const

export const ChatMessageSchema = Type.Object({ role: Type.String() }, open)

export const ChatRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(ChatMessageSchema, { minItems: 1 }),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
}, open)
export type ChatRequestBody = Static<typeof ChatRequestSchema>

const UsageSchema = Type.Object({
  prompt_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  total_tokens: Type.Integer(),
  prompt_tokens_details: Type.Object({ cached_tokens: Type.Integer() }, open),
  completion_tokens_details: Type.Object({ reasoning_tokens: Type.Integer() }, open),
}, open)

export const ChatCompletionSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  system_fingerprint: Type.String(),
  choices: Type.Array(Type.Object({
    index: Type.Integer(),
    message: Type.Object({
      role: Type.Literal('assistant'),
      content: Type.Union([Type.String(), Type.Null()]),
      refusal: Type.Null(),
      reasoning_content: Type.Optional(Type.String()),
    }, open),
    logprobs: Type.Null(),
    finish_reason: Type.String(),
  }, open)),
  usage: UsageSchema,
}, open)

export const ModelSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer(),
  owned_by: Type.String(),
  root: Type.String(),
  capabilities: Type.Object({
    thinking: Type.Boolean(),
    search: Type.Boolean(),
    vision: Type.Boolean(),
    reasoning: Type.Boolean(),
    web_search: Type.Boolean(),
  }, open),
  context_length: Type.Optional(Type.Integer()),
  alias_for: Type.Optional(Type.String()),
}, open)

export const ModelListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(ModelSchema),
})

export const ModelParamsSchema = Type.Object({ id: Type.String() })

const PoolCountsSchema = Type.Object({
  total: Type.Integer(),
  healthy: Type.Integer(),
  degraded: Type.Integer(),
  down: Type.Integer(),
  initialized: Type.Boolean(),
})

export const HealthSchema = Type.Object({
  status: Type.Literal('OK'),
  timestamp: Type.String(),
  version: Type.String(),
  config: Type.Object({
    apiKeyEnabled: Type.Boolean(),
    serverMode: Type.Boolean(),
    debugMode: Type.Boolean(),
    autoRefreshToken: Type.Boolean(),
  }),
  token: Type.Object({
    valid: Type.Boolean(),
    expired: Type.Boolean(),
    remainingTime: Type.Integer(),
    formattedTime: Type.String(),
    needsRefresh: Type.Boolean(),
    reason: Type.String(),
  }),
  identityPool: PoolCountsSchema,
  models: Type.Object({ source: Type.String() }),
  /** Only for callers with the API key (or loopback callers when no key is configured). */
  identities: Type.Optional(Type.Array(Type.Object({
    id: Type.String(),
    label: Type.String(),
    kind: Type.String(),
    state: Type.String(),
    available: Type.Boolean(),
    blockedBy: Type.Union([Type.Literal('rate_limited'), Type.Literal('challenge'), Type.Literal('auth_refused'), Type.Literal('breaker'), Type.Literal('no_token'), Type.Null()]),
    failures: Type.Integer(),
    inFlight: Type.Integer(),
    tokenExpiresAt: Type.Union([Type.String(), Type.Null()]),
    cooldownUntil: Type.Union([Type.String(), Type.Null()]),
    rateLimitedUntil: Type.Union([Type.String(), Type.Null()]),
    challengedUntil: Type.Union([Type.String(), Type.Null()]),
    proxy: Type.Boolean(),
    lastError: Type.Union([Type.String(), Type.Null()]),
    lastErrorAt: Type.Union([Type.String(), Type.Null()]),
    lastSuccess: Type.Union([Type.String(), Type.Null()]),
  }))),
  counters: Type.Optional(Type.Record(Type.String(), Type.Integer())),
})

const RefreshResultSchema = Type.Object({
  identity: Type.String(),
  label: Type.String(),
  success: Type.Boolean(),
  expiresAt: Type.Optional(Type.String()),
  remaining: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
})

export const RefreshResponseSchema = Type.Object({
  success: Type.Boolean(),
  message: Type.String(),
  timestamp: Type.String(),
  results: Type.Array(RefreshResultSchema),
  token: Type.Object({ valid: Type.Boolean(), remainingTime: Type.Integer(), formattedTime: Type.String() }),
})

export const LandingSchema = Type.Object({
  name: Type.String(),
  version: Type.String(),
  description: Type.String(),
  endpoints: Type.Array(Type.Object({ method: Type.String(), path: Type.String(), description: Type.String() })),
  docs: Type.String(),
})
