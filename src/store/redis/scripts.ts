/**
 * The shared store's Lua scripts (SCALE-OUT §A3.4), registered with ioredis `defineCommand`
 * (EVALSHA with a fallback to EVAL, so a restarted, empty Redis works at the first call). Scripts
 * that decide on time read Redis's clock (`TIME`) unless the caller passes one (tests with a fake
 * clock), so replica clocks never compare deadlines.
 */
import type { Redis } from 'ioredis'

const NOW = `local now
if ARGV[NOWARG] ~= '' then now = tonumber(ARGV[NOWARG]) else
  local t = redis.call('TIME') now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
`

/**
 * PICK  KEYS: health hash, cursor   ARGV: probe prefix, probe ttl ms, owner, now|'', candidates JSON
 * [{id, r: canRefresh, v: tokenValid, x: excluded}]. The eligibility rule of src/health.ts, on the
 * shared records: ready first, then the one half-open trial (SET NX PX across replicas), then a
 * degraded identity whose trial is running. Returns {id, trial 0|1} or false; moves the shared cursor.
 */
const PICK = NOW.replace('NOWARG', '4').replace('NOWARG', '4') + `
local cands = cjson.decode(ARGV[5])
local n = #cands
local cursor = tonumber(redis.call('GET', KEYS[2]) or '0') % n
local function fut (x) return type(x) == 'number' and x > now end
local fallback = -1
for k = 0, n - 1 do
  local idx = (cursor + k) % n
  local c = cands[idx + 1]
  if not c.x then
    local raw = redis.call('HGET', KEYS[1], c.id)
    local h = {}
    if raw then h = cjson.decode(raw) end
    local state = h.state or 'healthy'
    local kind = 'blocked'
    if fut(h.rateLimitedUntil) or fut(h.challengedUntil) then kind = 'blocked'
    elseif (not c.r) and (not c.v) then kind = 'blocked'
    elseif h.authRefused == true or h.disabled == true then kind = 'blocked'
    elseif state == 'healthy' then kind = 'ready'
    elseif fut(h.cooldownUntil) then kind = 'blocked'
    elseif redis.call('SET', ARGV[1] .. c.id, ARGV[3], 'NX', 'PX', ARGV[2]) then kind = 'trial'
    elseif state == 'degraded' then kind = 'fallback' end
    if kind == 'ready' or kind == 'trial' then
      redis.call('SET', KEYS[2], (idx + 1) % n)
      if kind == 'trial' then return {c.id, 1} end
      return {c.id, 0}
    end
    if kind == 'fallback' and fallback == -1 then fallback = idx end
  end
end
if fallback ~= -1 then
  redis.call('SET', KEYS[2], (fallback + 1) % n)
  return {cands[fallback + 1].id, 0}
end
return false`

/** READ  KEYS: health hash   ARGV: id, now|''  → {record JSON or '', now}. */
const READ = NOW.replace('NOWARG', '2').replace('NOWARG', '2') + `
return {redis.call('HGET', KEYS[1], ARGV[1]) or '', now}`

/**
 * WRITE (compare and set)  KEYS: health hash   ARGV: id, expected JSON ('' = none), new JSON,
 * probe key to release ('' = none), channel, message, owner (the probe key is released only when
 * this replica's trial holds it). Publishes the change in the same step.
 */
const WRITE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '' and redis.call('GET', ARGV[4]) == ARGV[7] then redis.call('DEL', ARGV[4]) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1`

/**
 * CONV_PUT  KEYS: conv key, index, chats   ARGV: key, value JSON, expiresAt, px, chatId, max entries,
 * conv prefix. Returns the values that left the map (the old entry for another chat, the oldest
 * entries beyond the cap) for the caller to announce.
 */
const CONV_PUT = `
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[5])
local out = {}
if old then
  local o = cjson.decode(old)
  if o.ref.chatId ~= ARGV[5] then redis.call('ZREM', KEYS[3], o.ref.chatId) table.insert(out, old) end
end
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[6])
while over > 0 do
  local m = redis.call('ZRANGE', KEYS[2], 0, 1)
  local victim = m[1]
  if victim == ARGV[1] then victim = m[2] end
  redis.call('ZREM', KEYS[2], victim)
  local v = redis.call('GET', ARGV[7] .. victim)
  if v then
    redis.call('DEL', ARGV[7] .. victim)
    redis.call('ZREM', KEYS[3], cjson.decode(v).ref.chatId)
    table.insert(out, v)
  end
  over = over - 1
end
return out`

/** CONV_DROP  KEYS: conv key, index   ARGV: key, expected value  → 1 when this call removed it. */
const CONV_DROP = `
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`

/** LOCK  KEYS: lock   ARGV: holder, px  → 1 when taken (or already held by `holder`). */
const LOCK = `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

/** RELEASE  KEYS: lock   ARGV: holder: delete only when it is still the holder's. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

// ---- Ready chats handed out: a take that lands after its caller gave up is never lost (issue 13) ----

/** Acknowledge takes: ARGV[arg] is a JSON array of chat ids their takers received; KEYS[z], KEYS[h] the taken zset and hash. */
const ACK_TAKEN = (arg: number, z: number, h: number): string => `
for _, id in ipairs(cjson.decode(ARGV[${arg}])) do
  redis.call('ZREM', KEYS[${z}], id)
  redis.call('HDEL', KEYS[${h}], id)
end
`

/**
 * TAKE  KEYS: list, ids set, keys set, taken zset, taken hash   ARGV: stock key, JSON array of
 * earlier takes to acknowledge → the oldest chat JSON (or false). The chat is noted as taken (Redis
 * time) until its taker acknowledges it: one that times out here and still runs in Redis later is
 * found by ORPHANS, not leaked.
 */
const TAKE = ACK_TAKEN(2, 4, 5) + `
local v = redis.call('LPOP', KEYS[1])
if not v then redis.call('SREM', KEYS[3], ARGV[1]) return false end
local id = cjson.decode(v).chatId
redis.call('SREM', KEYS[2], id)
local t = redis.call('TIME')
redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), id)
redis.call('HSET', KEYS[5], id, v)
return v`

/** ACK  KEYS: taken zset, taken hash   ARGV: JSON array of chat ids. */
const ACK = ACK_TAKEN(1, 1, 2) + 'return 1'

/**
 * ORPHANS  KEYS: taken zset, taken hash, conversation chats zset   ARGV: age ms, max count → the
 * chats taken longer ago than the age and never acknowledged, removed (each returned once, to one
 * replica), except a chat a live conversation continues in (its record is only dropped).
 */
const ORPHANS = NOW.replace('NOWARG', '3').replace('NOWARG', '3') + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  if v and not redis.call('ZSCORE', KEYS[3], id) then table.insert(out, v) end
end
return out`

/**
 * TOKEN_PUT  KEYS: lease, token hash   ARGV: owner, sealed, exp. Only the lease holder writes, and
 * only a token that does not expire before the stored one; the lease is given back.
 */
const TOKEN_PUT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lease_lost' end
redis.call('DEL', KEYS[1])
local cur = tonumber(redis.call('HGET', KEYS[2], 'exp') or '0')
if tonumber(ARGV[3]) < cur then return 'not_newer' end
redis.call('HSET', KEYS[2], 'sealed', ARGV[2], 'exp', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'ver', 1)
return 'ok'`

/** HIT  KEYS: counter   ARGV: window ms → {count, ttl ms}: a fixed window that starts at the first hit. */
const HIT = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {n, ttl}`

// ---- One round trip at each end of a conversation turn (issue 13) ----

/** Lua: `live(key)` → the live entry's decoded value and JSON, or nil (an expired one removed and kept in `gone`). ARGV[2] now, ARGV[3] conv prefix, KEYS[2] index. */
const LIVE = `
local now = tonumber(ARGV[2])
local gone = {}
local function live (key)
  local k = ARGV[3] .. key
  local raw = redis.call('GET', k)
  if not raw then return nil end
  local v = cjson.decode(raw)
  if v.exp <= now then
    redis.call('DEL', k)
    redis.call('ZREM', KEYS[2], key)
    table.insert(gone, raw)
    return nil
  end
  return v, raw
end
local function reply (state, raw)
  local res = {state, raw}
  for _, g in ipairs(gone) do table.insert(res, g) end
  return res
end
`

/**
 * CONV_BEGIN  KEYS: conv key, index   ARGV: key, now, conv prefix, holder, lock px, lock prefix,
 * via pointer '1'|''. The live entry (through the pointer under `key` when `via`) and its chat's lock
 * in one step → {'none'|'busy'|'locked', entry value or '', expired values removed here (to announce)...}.
 */
const CONV_BEGIN = LIVE + `
local v, raw = live(ARGV[1])
if v and ARGV[7] == '1' then v, raw = live(v.ref.responseId) end
if not v then return reply('none', '') end
local lk = ARGV[6] .. v.ref.chatId
local cur = redis.call('GET', lk)
if cur and cur ~= ARGV[4] then return reply('busy', raw) end
redis.call('SET', lk, ARGV[4], 'PX', ARGV[5])
return reply('locked', raw)`

/**
 * CONV_COMMIT  KEYS: index, chats   ARGV: conv prefix, max entries, lock key|'', holder,
 * moved key|'', its chatId, responseId, identity, n, then n × (key, value JSON, expiresAt, px,
 * chatId). Drops the moved-on entry (if it still names that chat and parent), puts each entry as
 * CONV_PUT does, releases the lock if still the holder's. Returns the values that left the map
 * (another chat's entry under a put key, the oldest beyond the cap) for the caller to announce.
 */
const CONV_COMMIT = `
local pre = ARGV[1]
local out = {}
if ARGV[5] ~= '' then
  local raw = redis.call('GET', pre .. ARGV[5])
  if raw then
    local o = cjson.decode(raw)
    if o.ref.chatId == ARGV[6] and o.ref.responseId == ARGV[7] and (o.ref.identity or '') == ARGV[8] then
      redis.call('DEL', pre .. ARGV[5])
      redis.call('ZREM', KEYS[1], ARGV[5])
    end
  end
end
for i = 0, tonumber(ARGV[9]) - 1 do
  local b = 10 + i * 5
  local key, chat = ARGV[b], ARGV[b + 4]
  local old = redis.call('GET', pre .. key)
  redis.call('SET', pre .. key, ARGV[b + 1], 'PX', ARGV[b + 3])
  redis.call('ZADD', KEYS[1], ARGV[b + 2], key)
  if chat ~= '' then redis.call('ZADD', KEYS[2], 'GT', ARGV[b + 2], chat) end
  if old then
    local o = cjson.decode(old)
    if o.ref.chatId ~= chat then
      if o.ref.chatId ~= '' then redis.call('ZREM', KEYS[2], o.ref.chatId) end
      table.insert(out, old)
    end
  end
  local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
  while over > 0 do
    local m = redis.call('ZRANGE', KEYS[1], 0, 1)
    local victim = m[1]
    if victim == key then victim = m[2] end
    redis.call('ZREM', KEYS[1], victim)
    local v = redis.call('GET', pre .. victim)
    if v then
      redis.call('DEL', pre .. victim)
      local c = cjson.decode(v).ref.chatId
      if c ~= '' then redis.call('ZREM', KEYS[2], c) end
      table.insert(out, v)
    end
    over = over - 1
  end
end
if ARGV[3] ~= '' and redis.call('GET', ARGV[3]) == ARGV[4] then redis.call('DEL', ARGV[3]) end
return out`

/**
 * RELEASE_MANY  KEYS: -   ARGV: lock prefix, conv prefix, then pairs (target, holder): target
 * 'c:<chatId>', 'k:<conv key>' (the chat of that entry) or 'p:<pointer key>' (of the entry it names). Each lock is deleted only while it is
 * still the holder's. Returns how many were deleted.
 */
const RELEASE_MANY = `
local n = 0
for i = 3, #ARGV - 1, 2 do
  local t, chat = ARGV[i], nil
  if string.sub(t, 1, 2) == 'c:' then chat = string.sub(t, 3)
  else
    local raw = redis.call('GET', ARGV[2] .. string.sub(t, 3))
    if raw and string.sub(t, 1, 2) == 'p:' then raw = redis.call('GET', ARGV[2] .. cjson.decode(raw).ref.responseId) end
    if raw then chat = cjson.decode(raw).ref.chatId end
  end
  if chat and redis.call('GET', ARGV[1] .. chat) == ARGV[i + 1] then
    redis.call('DEL', ARGV[1] .. chat)
    n = n + 1
  end
end
return n`

const SCRIPTS = {
  qgHit: { numberOfKeys: 1, lua: HIT },
  qgTokenPut: { numberOfKeys: 2, lua: TOKEN_PUT },
  qgPick: { numberOfKeys: 2, lua: PICK },
  qgRead: { numberOfKeys: 1, lua: READ },
  qgWrite: { numberOfKeys: 1, lua: WRITE },
  qgConvPut: { numberOfKeys: 3, lua: CONV_PUT },
  qgConvDrop: { numberOfKeys: 2, lua: CONV_DROP },
  qgLock: { numberOfKeys: 1, lua: LOCK },
  qgRelease: { numberOfKeys: 1, lua: RELEASE },
  qgConvBegin: { numberOfKeys: 2, lua: CONV_BEGIN },
  qgConvCommit: { numberOfKeys: 2, lua: CONV_COMMIT },
  qgReleaseMany: { numberOfKeys: 0, lua: RELEASE_MANY },
  qgTake: { numberOfKeys: 5, lua: TAKE },
  qgAck: { numberOfKeys: 2, lua: ACK },
  qgOrphans: { numberOfKeys: 3, lua: ORPHANS },
} as const

export type ScriptName = keyof typeof SCRIPTS

/** The client with our scripts defined on it. */
export interface ScriptClient {
  redis: Redis
  run: (name: ScriptName, ...args: Array<string | number>) => Promise<unknown>
}

/** Define the scripts on `redis` (idempotent) and return a typed caller. */
export function withScripts (redis: Redis): ScriptClient {
  const r = redis as unknown as Record<string, ((...a: Array<string | number>) => Promise<unknown>) | undefined>
  for (const [name, def] of Object.entries(SCRIPTS)) {
    if (typeof r[name] !== 'function') redis.defineCommand(name, def)
  }
  return { redis, run: async (name, ...args) => await r[name]!.apply(redis, args) }
}
