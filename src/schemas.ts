/**
 * TypeBox schemas for every route. Request schemas stay permissive (unknown fields are accepted and
 * kept: clients send many); response schemas allow extra fields so nothing is stripped.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

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

/** `T` or `null`: clients that serialise unset options (Python's `None`) send `null`. */
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const opt = <T extends TSchema>(t: T) => Type.Optional(nullable(t))

/**
 * One content part. Its kind decides which field matters (`text`, `image_url`, …); the parts the
 * gateway cannot use yet are refused by `prepareChat` with `unsupported_parameter`, after their shape
 * has been checked here.
 */
export const ContentPartSchema = Type.Object({
  type: Type.String(),
  text: Type.Optional(Type.String()),
  refusal: Type.Optional(Type.String()),
  image_url: Type.Optional(Type.Object({ url: Type.String(), detail: Type.Optional(Type.String()) }, open)),
  input_audio: Type.Optional(Type.Object({ data: Type.String(), format: Type.String() }, open)),
  file: Type.Optional(Type.Object({
    file_data: Type.Optional(Type.String()),
    file_id: Type.Optional(Type.String()),
    filename: Type.Optional(Type.String()),
  }, open)),
}, open)

const ToolCallSchema = Type.Object({
  id: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  function: Type.Optional(Type.Object({
    name: Type.Optional(Type.String()),
    // OpenAI sends a JSON string; some clients send the object itself (folded as JSON).
    arguments: Type.Optional(Type.Union([Type.String(), Type.Object({}, open)])),
  }, open)),
}, open)

const FunctionCallSchema = Type.Object({
  name: Type.Optional(Type.String()),
  arguments: Type.Optional(Type.Union([Type.String(), Type.Object({}, open)])),
}, open)

/** A message of any role; which roles exist is decided by `prepareChat` (`invalid_value`). */
export const ChatMessageSchema = Type.Object({
  role: Type.String(),
  content: opt(Type.Union([Type.String(), Type.Array(ContentPartSchema)])),
  name: opt(Type.String()),
  tool_calls: opt(Type.Array(ToolCallSchema)),
  tool_call_id: opt(Type.String()),
  function_call: opt(FunctionCallSchema),
  reasoning_content: opt(Type.String()),
  refusal: opt(Type.String()),
  audio: opt(Type.Object({ id: Type.String() }, open)),
}, open)

const FunctionDefinitionSchema = Type.Object({
  name: Type.String(),
  description: Type.Optional(Type.String()),
  parameters: Type.Optional(Type.Object({}, open)),
  strict: opt(Type.Boolean()),
}, open)

export const ToolSchema = Type.Object({
  type: Type.String(),
  function: Type.Optional(FunctionDefinitionSchema),
  custom: Type.Optional(Type.Object({ name: Type.String() }, open)),
}, open)

/**
 * `POST /v1/chat/completions`. Every field the OpenAI API defines is type-checked (a wrong type is a
 * 400 `invalid_type` naming the field); unknown fields are accepted and kept (`additionalProperties`).
 * What the gateway does with each field, and which values it refuses, is `prepareChat`'s business.
 */
export const ChatRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(ChatMessageSchema, { minItems: 1 }),
  stream: opt(Type.Boolean()),
  stream_options: opt(Type.Object({
    include_usage: opt(Type.Boolean()),
    include_obfuscation: opt(Type.Boolean()),
  }, open)),
  temperature: opt(Type.Number()),
  top_p: opt(Type.Number()),
  n: opt(Type.Integer()),
  stop: opt(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 })])),
  max_tokens: opt(Type.Integer()),
  max_completion_tokens: opt(Type.Integer()),
  presence_penalty: opt(Type.Number()),
  frequency_penalty: opt(Type.Number()),
  logit_bias: opt(Type.Record(Type.String(), Type.Number())),
  logprobs: opt(Type.Boolean()),
  top_logprobs: opt(Type.Integer()),
  seed: opt(Type.Integer()),
  user: opt(Type.String()),
  tools: opt(Type.Array(ToolSchema)),
  tool_choice: opt(Type.Union([Type.String(), Type.Object({ type: Type.String() }, open)])),
  parallel_tool_calls: opt(Type.Boolean()),
  functions: opt(Type.Array(FunctionDefinitionSchema)),
  function_call: opt(Type.Union([Type.String(), Type.Object({ name: Type.String() }, open)])),
  response_format: opt(Type.Object({
    type: Type.String(),
    json_schema: Type.Optional(Type.Object({
      name: Type.String(),
      description: Type.Optional(Type.String()),
      schema: Type.Optional(Type.Object({}, open)),
      strict: opt(Type.Boolean()),
    }, open)),
  }, open)),
  reasoning_effort: opt(Type.String()),
  verbosity: opt(Type.String()),
  modalities: opt(Type.Array(Type.String())),
  audio: opt(Type.Object({}, open)),
  metadata: opt(Type.Object({}, open)),
  store: opt(Type.Boolean()),
  service_tier: opt(Type.String()),
  prediction: opt(Type.Object({ type: Type.String() }, open)),
  web_search_options: opt(Type.Object({}, open)),
  prompt_cache_key: opt(Type.String()),
  prompt_cache_retention: opt(Type.String()),
  safety_identifier: opt(Type.String()),
}, open)
/** The validated request body (the route's TypeBox-inferred type). Unknown fields are kept but untyped. */
export type ChatRequest = Static<typeof ChatRequestSchema>
export type ChatMessage = Static<typeof ChatMessageSchema>

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
      tool_calls: Type.Optional(Type.Array(Type.Object({
        id: Type.String(),
        type: Type.Literal('function'),
        function: Type.Object({ name: Type.String(), arguments: Type.String() }),
      }))),
      /** Legacy `functions` requests. */
      function_call: Type.Optional(Type.Object({ name: Type.String(), arguments: Type.String() })),
      /** Search models: where the answer cites the pages it consulted. */
      annotations: Type.Optional(Type.Array(Type.Object({
        type: Type.Literal('url_citation'),
        url_citation: Type.Object({ url: Type.String(), title: Type.String(), start_index: Type.Integer(), end_index: Type.Integer() }),
      }))),
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

export const PoolCountsSchema = Type.Object({
  total: Type.Integer(),
  healthy: Type.Integer(),
  degraded: Type.Integer(),
  down: Type.Integer(),
  initialized: Type.Boolean(),
})

/** Public view of one identity (/health with the API key). No secrets. */
export const IdentityViewSchema = Type.Object({
  id: Type.String(),
  label: Type.String(),
  kind: Type.Union([Type.Literal('cookie'), Type.Literal('token'), Type.Literal('account')]),
  state: Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('down')]),
  available: Type.Boolean(),
  /** The dashboard's vocabulary (`data-state` of its identity row): `cooldown` is rate limited or challenged. */
  status: Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('down'), Type.Literal('cooldown'), Type.Literal('disabled'), Type.Literal('no_token')]),
  blockedBy: Type.Union([Type.Literal('disabled'), Type.Literal('rate_limited'), Type.Literal('challenge'), Type.Literal('auth_refused'), Type.Literal('breaker'), Type.Literal('no_token'), Type.Null()]),
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
})
export type IdentityView = Static<typeof IdentityViewSchema>

/** The token that expires first, for /health. */
export const TokenStatusSchema = Type.Object({
  valid: Type.Boolean(),
  expired: Type.Boolean(),
  remainingTime: Type.Integer(),
  needsRefresh: Type.Boolean(),
  reason: Type.String(),
})
export type TokenStatus = Static<typeof TokenStatusSchema>
export type PoolCounts = Static<typeof PoolCountsSchema>

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
  token: Type.Composite([TokenStatusSchema, Type.Object({ formattedTime: Type.String() })]),
  identityPool: PoolCountsSchema,
  models: Type.Object({ source: Type.String() }),
  /** Only for callers with the API key (or loopback callers when no key is configured). */
  identities: Type.Optional(Type.Array(IdentityViewSchema)),
  counters: Type.Optional(Type.Record(Type.String(), Type.Integer())),
})

export const RefreshResultSchema = Type.Object({
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
