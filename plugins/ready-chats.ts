import fp from 'fastify-plugin'
import { ReadyChats } from '../src/ready/keeper.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Ready chats (`READY_CHATS_PER_IDENTITY`): the stock keeper; `enabled` is false when off. */
    qwenReadyChats: ReadyChats
  }
}

/**
 * Ready chats: upstream chats created ahead for each usable identity and each (model, chat type)
 * in recent demand, kept in `qwenStore.readyChats` and handed out by the chat lifecycle service
 * (`ChatLifecycle.create`), refilled in the background after each take and on a tick that also
 * discards chats older than `READY_CHAT_MAX_AGE_MS` or of identities that stopped being usable
 * (deleted through the chat-deletion plugin). On close, a single instance deletes its ready chats;
 * with a shared store the stock stays for the other replicas.
 */
export default fp(async (fastify) => {
  const cfg = fastify.qwenConfig
  const pool = fastify.qwenPool
  const chats = fastify.qwenCompletions.chats
  const deletion = fastify.qwenChatDeletion
  const log = fastify.log
  const keeper = new ReadyChats({
    stock: fastify.qwenStore.readyChats,
    perIdentity: cfg.readyChatsPerIdentity,
    maxAgeMs: cfg.readyChatMaxAgeMs,
    now: cfg.now,
    usable: () => {
      const now = cfg.now()
      return pool.identities.filter((i) => i.token !== undefined && (i.expiresAt === undefined || i.expiresAt > now) &&
        pool.eligibility(i).kind === 'ready' && pool.health(i).disabled !== true).map((i) => i.id)
    },
    create: (identity, model, chatType, signal) => chats.createAhead(identity, model, chatType, signal),
    discard: (chatId, identity) => { deletion.discard(chatId, identity) },
    onError: (what, err) => { log.warn({ what, error: (err as Error).message }, 'ready chats: background work failed') },
  })
  fastify.decorate('qwenReadyChats', keeper)
  if (!keeper.enabled) return

  chats.useStock(keeper)
  // Every quarter of the maximum age (between 1 s and 30 s): discard what is stale, top up what is in demand.
  const tickMs = Math.min(30_000, Math.max(1000, Math.floor(cfg.readyChatMaxAgeMs / 4)))
  let ticking: Promise<void> | undefined
  const tick = (): void => {
    ticking ??= keeper.prune().then(() => { keeper.refill() }).finally(() => { ticking = undefined })
  }
  const timer = setInterval(tick, tickMs)
  timer.unref()
  // An identity that changes state (breaker, cooldown, token) loses its ready chats at once.
  const offs = [
    fastify.qwenEvents.on('identity.health', tick),
    fastify.qwenEvents.on('token.failed', tick),
  ]
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    for (const off of offs) off()
    chats.useStock(undefined)
    await ticking
    const shared = fastify.qwenStoreInfo.mode() === 'redis'
    const n = await keeper.close(!shared)
    if (n > 0) log.info({ deleted: n }, 'ready chats deleted at close')
  })
}, { name: 'qwen-ready-chats', fastify: '5.x', dependencies: ['qwen-config', 'qwen-events', 'qwen-store', 'qwen-identity-pool', 'qwen-completions', 'qwen-chat-deletion'] })
