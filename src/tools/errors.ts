/**
 * The model's answer does not hold what the request forced: a valid tool call (`tool_choice`
 * `required` or a named tool) or valid JSON (a JSON `response_format`). Thrown by the pipeline stage
 * when the answer ends; the runner retries once with a corrective note (`problems` say what was
 * wrong), and a second failure reaches the client as 502 `tool_call_invalid` / `invalid_model_output`
 * (DECISIONS "Error codes added"). Says nothing about the account: the lease outcome is neutral.
 */
import { GatewayError } from '../errors.js'

export type ModelOutputKind = 'tool_call' | 'json'

export class ModelOutputError extends GatewayError {
  constructor (readonly kind: ModelOutputKind, readonly problems: string[]) {
    const what = kind === 'tool_call' ? 'a valid tool call, which the request forced' : 'valid JSON for the requested response_format'
    super(`The model's answer did not contain ${what}: ${problems.join('; ').slice(0, 500)}`, {
      status: 502,
      type: 'server_error',
      code: kind === 'tool_call' ? 'tool_call_invalid' : 'invalid_model_output',
    })
    this.name = 'ModelOutputError'
  }
}
