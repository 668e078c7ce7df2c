/**
 * TypeBox schemas of the Anthropic Messages face (`POST /v1/messages`, `/v1/messages/count_tokens`).
 * As for the OpenAI face, every known field is type-checked and unknown fields are kept
 * (`cache_control`, `citations`, new options): what the gateway does with each is `toChatRequest`'s
 * business.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const open = { additionalProperties: true } as const
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const opt = <T extends TSchema>(t: T) => Type.Optional(nullable(t))

/** One content block of any kind; `toChatRequest` decides which kinds it uses. */
export const AnthropicBlockSchema = Type.Object({
  type: Type.String(),
  text: Type.Optional(Type.String()),
  id: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  input: Type.Optional(Type.Unknown()),
  tool_use_id: Type.Optional(Type.String()),
  content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Object({ type: Type.String() }, open))])),
  is_error: opt(Type.Boolean()),
  source: Type.Optional(Type.Object({ type: Type.String() }, open)),
}, open)
export type AnthropicBlock = Static<typeof AnthropicBlockSchema>

export const AnthropicMessageSchema = Type.Object({
  role: Type.String(),
  content: Type.Union([Type.String(), Type.Array(AnthropicBlockSchema)]),
}, open)

export const AnthropicToolSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  type: opt(Type.String()),
  description: Type.Optional(Type.String()),
  input_schema: Type.Optional(Type.Object({}, open)),
}, open)

const fields = {
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(AnthropicMessageSchema, { minItems: 1 }),
  system: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Object({ type: Type.String(), text: Type.Optional(Type.String()) }, open))])),
  tools: opt(Type.Array(AnthropicToolSchema)),
  tool_choice: opt(Type.Object({
    type: Type.String(),
    name: Type.Optional(Type.String()),
    disable_parallel_tool_use: Type.Optional(Type.Boolean()),
  }, open)),
  thinking: opt(Type.Object({ type: Type.String(), budget_tokens: Type.Optional(Type.Integer()) }, open)),
}

/** `POST /v1/messages`. */
export const MessagesRequestSchema = Type.Object({
  ...fields,
  max_tokens: Type.Optional(Type.Integer()),
  stop_sequences: opt(Type.Array(Type.String())),
  stream: opt(Type.Boolean()),
  temperature: opt(Type.Number()),
  top_p: opt(Type.Number()),
  top_k: opt(Type.Integer()),
  metadata: opt(Type.Object({ user_id: opt(Type.String()) }, open)),
}, open)
export type MessagesRequest = Static<typeof MessagesRequestSchema>

/** `POST /v1/messages/count_tokens`: the same conversation, without the generation options. */
export const CountTokensRequestSchema = Type.Object(fields, open)
export type CountTokensRequest = Static<typeof CountTokensRequestSchema>

export const CountTokensResponseSchema = Type.Object({ input_tokens: Type.Integer() })

export const AnthropicErrorSchema = Type.Object({
  type: Type.Literal('error'),
  error: Type.Object({ type: Type.String(), message: Type.String() }),
})
export const AnthropicErrorResponses = { '4xx': AnthropicErrorSchema, '5xx': AnthropicErrorSchema } as const

const UsageSchema = Type.Object({
  input_tokens: Type.Integer(),
  output_tokens: Type.Integer(),
  cache_creation_input_tokens: Type.Integer(),
  cache_read_input_tokens: Type.Integer(),
}, open)

export const MessageResponseSchema = Type.Object({
  id: Type.String(),
  type: Type.Literal('message'),
  role: Type.Literal('assistant'),
  model: Type.String(),
  content: Type.Array(Type.Object({ type: Type.String() }, open)),
  stop_reason: Type.String(),
  stop_sequence: nullable(Type.String()),
  usage: UsageSchema,
}, open)

export const AnthropicModelSchema = Type.Object({
  type: Type.Literal('model'),
  id: Type.String(),
  display_name: Type.String(),
  created_at: Type.String(),
})

/** `GET /v1/models` for Anthropic clients (a request carrying `anthropic-version`). */
export const AnthropicModelListSchema = Type.Object({
  data: Type.Array(AnthropicModelSchema),
  has_more: Type.Boolean(),
  first_id: nullable(Type.String()),
  last_id: nullable(Type.String()),
})
