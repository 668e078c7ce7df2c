/**
 * Free-form (`custom`) tools of the Responses API over the shared tool engine. The model is shown a
 * function tool with one string parameter `input` (its description carries the tool's grammar, when
 * it has one); a call `{"name": …, "arguments": {"input": "…"}}` goes back to the client as a
 * `custom_tool_call` whose `input` is that raw string.
 */
import type { ToolCallOut } from '../faces/face.js'

/** The JSON schema a custom tool is shown with. */
export function customToolParameters (format: { type: string; [k: string]: unknown } | undefined): Record<string, unknown> {
  let description = 'The raw text input of the tool (free-form, not JSON).'
  if (format?.type === 'grammar' && typeof format.definition === 'string') {
    const syntax = typeof format.syntax === 'string' ? ` (${format.syntax})` : ''
    description += ` It must follow this grammar${syntax}:\n${format.definition}`
  }
  return {
    type: 'object',
    properties: { input: { type: 'string', description } },
    required: ['input'],
    additionalProperties: false,
  }
}

/** The raw input of a custom tool's call (the `input` argument; the whole argument text if the model sent something else). */
export function customInput (call: ToolCallOut): string {
  try {
    const v = JSON.parse(call.arguments) as unknown
    if (v !== null && typeof v === 'object' && typeof (v as { input?: unknown }).input === 'string') return (v as { input: string }).input
  } catch {
    // The engine validates arguments against the schema above; kept total anyway.
  }
  return call.arguments
}
