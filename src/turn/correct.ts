/**
 * The corrective retry: when an answer ends without what the request forced (a valid tool call
 * under `tool_choice` `required` or a named tool, valid JSON under a JSON `response_format`), the
 * model gets one more turn whose prompt carries a note saying what was wrong. A second failure is
 * the client's answer: 502 `tool_call_invalid` / `invalid_model_output` (the ModelOutputError).
 */
import type { PreparedChat } from '../openai/request.js'
import { ModelOutputError } from '../tools/errors.js'
import { outputCorrection } from '../tools/json-output.js'
import { toolCorrection } from '../tools/prompt.js'

/** The prompt of the corrective turn, or undefined when `err` does not call for one. */
export function correctedPrompt (chat: PreparedChat, err: unknown): string | undefined {
  if (!(err instanceof ModelOutputError)) return undefined
  const note = err.kind === 'tool_call'
    ? chat.tools && toolCorrection(chat.tools, err.problems)
    : chat.output && outputCorrection(chat.output, err.problems)
  return note === undefined ? undefined : `${chat.prompt}\n\n${note}`
}

/** Run `attempt` with the request's prompt, and once more with the corrected prompt when it calls for one. */
export async function withCorrection<T> (chat: PreparedChat, attempt: (prompt: string) => Promise<T>): Promise<T> {
  try {
    return await attempt(chat.prompt)
  } catch (err) {
    const prompt = correctedPrompt(chat, err)
    if (prompt === undefined) throw err
    return await attempt(prompt)
  }
}
