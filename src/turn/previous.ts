/**
 * `previous_response_id` on the Responses API, through the conversation map. After an answer with
 * `store` not false, the gateway's id of it (`resp_…`) is remembered as a pointer entry
 * `resp:<owner>:<id>` whose `responseId` is the key of the conversation entry that answer left
 * (the pointer holds no chat: `chatId` is empty, so its expiry deletes nothing). A request naming
 * that id follows the pointer to the entry and continues its chat with only its own input.
 *
 * Only the latest answer of a chat can be continued (the upstream chains a turn to the latest
 * response of its chat): once the chat moved on, its entry is gone and an older id is not found.
 * The gateway keeps no prompt text, so a continuation that cannot be taken cannot fold either: it
 * is an error (503 while the chat is busy or its account cannot serve), never a silent new chat.
 */
import { GatewayError, InvalidRequestError, clip } from '../errors.js'
import type { ConversationRef } from '../conversations/store.js'

/**
 * A `previous_response_id` as a turn continues it: the planner follows the pointer, looks the entry
 * up and takes its chat's lock in one store step (`ConversationStore.begin(pointer, …, 'pointer')`).
 */
export interface PreviousResponse {
  /** The id as the client sent it. */
  id: string
  /** Its pointer entry's key (`responseKey`). */
  pointer: string
}

/** The pointer entry's key of response `id` for `owner` (`ownerOf`). */
export function responseKey (owner: string, id: string): string {
  return `resp:${owner}:${id}`
}

/** The pointer entry that remembers response `id` as continuing in the entry `entryKey` (no chat of its own). */
export function responsePointer (entryKey: string): ConversationRef {
  return { identity: undefined, chatId: '', responseId: entryKey }
}

/** 400 as OpenAI answers an unknown `previous_response_id`. */
export function previousNotFound (id: string): InvalidRequestError {
  return new InvalidRequestError(`Previous response with id '${clip(id)}' not found.`, 'previous_response_id', 'previous_response_not_found')
}

/**
 * 503: the response exists but its chat cannot be continued now (`chat_busy`: another request is
 * generating in it; `identity_unavailable`: its account is cooling down, down or without a token).
 */
export function previousUnavailable (id: string, reason: string): GatewayError {
  const why = reason === 'chat_busy'
    ? 'another request is still answering in its conversation'
    : reason === 'identity_unavailable' ? 'the account that holds its conversation cannot serve right now' : reason
  return new GatewayError(
    `Previous response with id '${clip(id)}' cannot be continued right now: ${why} (${reason}). Retry later, or send the whole conversation in \`input\`.`,
    { status: 503, type: 'server_error', code: reason === 'chat_busy' ? 'previous_response_busy' : 'previous_response_unavailable', param: 'previous_response_id', headers: { 'retry-after': '1' } },
  )
}

/**
 * The `previous_response_id` of `owner`'s request, to be continued: no store step here (the
 * planner's `begin` finds it, or answers `previousNotFound`).
 */
export function previousResponse (owner: string, id: string): PreviousResponse {
  return { id, pointer: responseKey(owner, id) }
}
