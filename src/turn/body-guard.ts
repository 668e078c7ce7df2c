/**
 * The body-size guard: the upstream's firewall answers completion bodies above ~128 KB with a
 * captcha, so a turn whose body would exceed `UPSTREAM_BODY_LIMIT_BYTES` sends its (folded) prompt
 * as an uploaded text file instead, attached to the message, with a short instruction as the
 * message itself. When that cannot be done (no upload plugin, or the body is still too large),
 * 400 `context_length_exceeded`. Called once per attempt, after the chat is created and the
 * request's own attachments are uploaded, so the file belongs to the attempt's identity.
 */
import { createHash } from 'node:crypto'
import type { Attachment, AttachmentUploader } from '../media/attachment.js'
import { bodyTooLargeError, type UpstreamClient } from '../upstream/client.js'
import type { TurnSpec } from '../upstream/protocol.js'
import type { CredentialLease } from './lease.js'

export const HISTORY_FILENAME = 'conversation.txt'

/** The message sent in place of the prompt when the prompt goes as a file. */
export const HISTORY_NOTE = `The whole conversation so far, with its instructions, is in the attached file ${HISTORY_FILENAME} (it was too long to send as a message). Read all of it and reply to its last message as the assistant, following every instruction in it. Do not mention the file.`

export interface BodyGuardDeps {
  client: Pick<UpstreamClient, 'completionBodyBytes' | 'bodyLimitBytes'>
  /** The upload plugin; without it a prompt that is too long cannot go as a file. */
  uploader?: AttachmentUploader | undefined
}

/** The prompt as a text attachment. */
export function historyAttachment (prompt: string): Attachment {
  const bytes = Buffer.from(prompt, 'utf8')
  return {
    kind: 'file',
    mime: 'text/plain',
    bytes,
    filename: HISTORY_FILENAME,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    param: 'messages',
  }
}

/** `turn` as it can be sent: unchanged when its body fits, else with its prompt moved into an uploaded file. */
export async function fitBody (turn: TurnSpec, d: BodyGuardDeps, lease: CredentialLease, o: { signal: AbortSignal; requestId: string }): Promise<TurnSpec> {
  const limit = d.client.bodyLimitBytes
  const size = d.client.completionBodyBytes(turn)
  if (size <= limit) return turn
  if (!d.uploader) throw bodyTooLargeError(size, limit, 'Sending the history as a file needs uploads, which this gateway does not have.')
  const [file] = await d.uploader.filesFor(lease, [historyAttachment(turn.content)], o)
  const moved: TurnSpec = { ...turn, content: HISTORY_NOTE, files: [...(turn.files ?? []), file] }
  const after = d.client.completionBodyBytes(moved)
  if (after > limit) throw bodyTooLargeError(after, limit, 'Even with the history sent as a file, the rest of the request (its attachments) is too large.')
  return moved
}
