/**
 * TypeBox schema of `POST /v1/responses`. Known fields are type-checked, unknown fields kept (Codex
 * and the SDK send `include`, `prompt_cache_key`, `service_tier`, …). Input items are open objects:
 * which kinds are used, and which are left out, is `toChatRequest`'s business.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const open = { additionalProperties: true } as const
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const opt = <T extends TSchema>(t: T) => Type.Optional(nullable(t))

/**
 * One input item. Only `type` and `role` are checked here: the fields of the kinds the gateway uses
 * are checked by `toChatRequest` (naming the item), and kinds it leaves out (web search calls, MCP,
 * tool search, …) may carry anything.
 */
export const InputItemSchema = Type.Object({
  type: Type.Optional(Type.String()),
  role: Type.Optional(Type.String()),
}, open)
export type InputItem = Static<typeof InputItemSchema>

export const ResponsesToolSchema = Type.Object({
  type: Type.String(),
  name: Type.Optional(Type.String()),
  description: opt(Type.String()),
  parameters: opt(Type.Object({}, open)),
  strict: opt(Type.Boolean()),
  format: Type.Optional(Type.Object({ type: Type.String() }, open)),
}, open)
export type ResponsesTool = Static<typeof ResponsesToolSchema>

export const ResponsesRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  input: Type.Union([Type.String(), Type.Array(InputItemSchema)]),
  instructions: opt(Type.String()),
  tools: opt(Type.Array(ResponsesToolSchema)),
  tool_choice: opt(Type.Union([Type.String(), Type.Object({ type: Type.String() }, open)])),
  parallel_tool_calls: opt(Type.Boolean()),
  text: opt(Type.Object({
    format: Type.Optional(Type.Object({
      type: Type.String(),
      name: Type.Optional(Type.String()),
      schema: Type.Optional(Type.Object({}, open)),
      description: Type.Optional(Type.String()),
      strict: opt(Type.Boolean()),
    }, open)),
    verbosity: opt(Type.String()),
  }, open)),
  reasoning: opt(Type.Object({ effort: opt(Type.String()), summary: opt(Type.String()) }, open)),
  max_output_tokens: opt(Type.Integer()),
  stream: opt(Type.Boolean()),
  store: opt(Type.Boolean()),
  previous_response_id: opt(Type.String()),
  conversation: opt(Type.Union([Type.String(), Type.Object({}, open)])),
  temperature: opt(Type.Number()),
  top_p: opt(Type.Number()),
  metadata: opt(Type.Object({}, open)),
  user: opt(Type.String()),
}, open)
export type ResponsesRequest = Static<typeof ResponsesRequestSchema>

/** The non-streaming body (room for every extra field). */
export const ResponseObjectSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('response'),
  created_at: Type.Integer(),
  status: Type.String(),
  model: Type.String(),
  output: Type.Array(Type.Object({ type: Type.String() }, open)),
  usage: Type.Object({
    input_tokens: Type.Integer(),
    output_tokens: Type.Integer(),
    total_tokens: Type.Integer(),
  }, open),
}, open)
