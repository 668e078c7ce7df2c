import fp from 'fastify-plugin'
import { ChatDeletionService, type ChatDeletion } from '../src/chat-deletion/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Deletes the upstream chats the gateway creates (`CHAT_DELETION`). Conversations call
     * `keep`/`release`, media code `linked` and `taskStarted`/`taskEnded`, the ready chats
     * `discard` (a ready chat that left the stock unused).
     */
    qwenChatDeletion: ChatDeletion
  }
}

/**
 * The chat-deletion plugin. Under `after_use`, every chat announced by `chat.created` is deleted in
 * the background once the request that created it is over (the `request` event) and nothing holds
 * it; image chats whose media went out as upstream URLs wait `CHAT_DELETION_MEDIA_DELAY_MS`
 * (`b64_json` answers do not), video chats also `VIDEO_TIMEOUT_MS` (the task may still run); under `scheduled`, a sweep every `CHAT_DELETION_INTERVAL_MS` deletes chats older than
 * `CHAT_DELETION_MAX_AGE_MS`. Deletions never delay a response; their failures are logged and
 * counted (`chat.deletion` event → `qwen_chat_deletions_total`). On close, pending deletions get a
 * bounded time to finish (after the request-lifecycle plugin has drained the requests).
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const events = fastify.qwenEvents
  const chats = fastify.qwenCompletions.chats
  const pool = fastify.qwenPool
  const log = fastify.log
  const service = new ChatDeletionService({
    mode: cfg.chatDeletion,
    now: cfg.now,
    mediaDelayMs: cfg.chatDeletionMediaDelayMs,
    intervalMs: cfg.chatDeletionIntervalMs,
    maxAgeMs: cfg.chatDeletionMaxAgeMs,
    retryDelayMs: cfg.chatDeletionRetryDelayMs,
    remove: (chatId, identityId, signal) => chats.delete(chatId, { identityId, signal }),
    list: (identity, page, signal) => chats.list(identity, { page, signal }),
    identities: () => pool.identities.filter((i) => i.token !== undefined).map((i) => i.id),
    // Ready chats wait in the stock unannounced, and a live conversation entry may have been made by
    // another replica (or before a restart): the sweep asks the store, which may be shared.
    spared: async (chatId) => {
      const store = fastify.qwenStore
      try {
        return await store.readyChats.holds(chatId) || await store.conversations.holds(chatId, cfg.now())
      } catch {
        return true
      }
    },
    report: (r) => {
      if (r.result === 'failed') log.warn({ chatId: r.chatId, identity: r.identity, attempts: r.attempts, error: r.error }, 'chat deletion failed')
      else log.debug({ chatId: r.chatId, identity: r.identity, result: r.result }, 'chat deleted')
      events.emit('chat.deletion', r)
    },
    onSweep: (r) => { log.info(r, 'chat sweep done') },
    onSweepError: (identity, err) => { log.warn({ identity, error: (err as Error).message }, 'chat sweep could not list the chats of an identity') },
  })
  fastify.decorate('qwenChatDeletion', service)
  const offs: Array<() => void> = []
  // Under every mode: `discard` (ready chats) queues deletions under `off` too, and they get the flush.
  fastify.addHook('onClose', async () => {
    for (const off of offs) off()
    const settled = await service.flush(cfg.chatDeletionFlushMs)
    const left = service.close()
    if (!settled || left.waitingForMedia > 0) log.warn(left, 'chat deletions left undone at close')
  })
  if (cfg.chatDeletion === 'off') return

  // Requests in progress by id: a client may reuse an `x-request-id`, and a chat is deleted only
  // when no request of its id is still running.
  const running = new Map<string, number>()
  fastify.addHook('onRequest', async (request) => {
    running.set(request.qwenRequestId, (running.get(request.qwenRequestId) ?? 0) + 1)
  })
  // Image requests answered with the bytes themselves (`b64_json`): their chats need not outlive them.
  const bytesOnly = new Set<string>()
  fastify.addHook('preHandler', async (request) => {
    const url = request.routeOptions.url
    if (url !== '/v1/images/generations' && url !== '/v1/images/edits') return
    const b = request.body as { response_format?: unknown } | null | undefined
    if (b !== null && typeof b === 'object' && b.response_format === 'b64_json') bytesOnly.add(request.qwenRequestId)
  })
  offs.push(
    events.on('chat.created', (e) => {
      service.created(e.chatId, e.identity, e.requestId)
      // Media given as upstream URLs (image URLs, Markdown links, video URLs) must keep working for
      // the media delay; a video task may run for VIDEO_TIMEOUT_MS before its URL exists.
      if (e.chatType === 't2v') service.linked(e.chatId, cfg.videoTimeoutMs + cfg.chatDeletionMediaDelayMs)
      else if ((e.chatType === 't2i' || e.chatType === 'image_edit') && !bytesOnly.has(e.requestId)) service.linked(e.chatId)
    }),
    // A conversation keeps its chat for the next turn; when its entry goes (expired, evicted,
    // abandoned), the chat can no longer be used.
    events.on('completion', (e) => { if (e.remembered && e.chatId) service.keep(e.chatId) }),
    events.on('conversation.expired', (e) => { service.release(e.chatId) }),
    events.on('request', (e) => {
      const n = (running.get(e.requestId) ?? 1) - 1
      if (n > 0) {
        running.set(e.requestId, n)
        return
      }
      running.delete(e.requestId)
      bytesOnly.delete(e.requestId)
      service.requestOver(e.requestId)
    }),
  )
}, { name: 'qwen-chat-deletion', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events', 'qwen-store', 'qwen-identity-pool', 'qwen-completions', 'qwen-access-log', 'qwen-request-id'] })
