-- post: adds messages at the back of a queue (or to the delayed set), creating the queue with
-- default settings when it does not exist. The messages come in posts (the requests this call
-- carries, see src/store/coalesce.rs), each stored whole or refused alone. A post with an
-- Idempotency-Key stores nothing when the same post was stored with that key within its
-- window: it answers that post's ids (and KEY_REUSED when the key came with other messages).
-- ARGV[1] wake channel, ARGV[2] id for a new queue, ARGV[3] default message_timeout (s),
-- ARGV[4] default message_expiration (s), ARGV[5] a number for the queue from the store-wide
-- sequence ('' when the caller has none), ARGV[6] the number of posts P, ARGV[7..6+P] the
-- number of messages of each, then two values per post: its Idempotency-Key ('' when none)
-- and the key's window (ms); then three values per message: body, delay (s), push headers as
-- JSON ('' when none).
-- Returns {NEEDS_NUMBER} when the queue has no number yet, none was given and a post is to be
-- stored (nothing is stored then), or {OK, created (0|1), alert messages waiting} followed,
-- per post, by {OK, id...} with its ids in the order given, {DELAY_TOO_LONG, index} when its
-- message `index` would expire before its delay is over, {TOO_LARGE, index, max} when its
-- body is larger than the queue's max_message_size, or {KEY_REUSED}. Atomic: each post is
-- stored whole or not at all. O(m) for m messages.
local now = now_ms()
local cfg = redis.call('HMGET', CFG, 'message_expiration', 'total_messages', 'last_post', 'type',
  'max_message_size', 'id', 'waiters_until', 'number', 'alerts')
-- Messages posted to a push queue go to its push workers; the others stay for pulling.
local ready_list, delayed_set = READY, DELAYED
if cfg[4] and cfg[4] ~= 'pull' then ready_list, delayed_set = PUSHQ, PUSH_DELAYED end
local expiration = tonumber(cfg[1] or ARGV[4]) * 1000
local max_size = tonumber(cfg[5] or '0')
local posts = tonumber(ARGV[6])
-- Each post's first message (its ARGV index) and whether it is refused (its reply, then), or
-- answered by an earlier post with its key: the ids stored then, or a post of this call.
local first, refusals, replays, storing = {}, {}, {}, false
-- Per post with a key: the fingerprint of its messages. Per key: what holds it, its
-- fingerprint and answer (the ids a record of an earlier call keeps, or a post of this call).
local prints, known = {}, {}
local at = 7 + 3 * posts
for p = 1, posts do
  first[p] = at
  local count = tonumber(ARGV[6 + p])
  local key = ARGV[5 + posts + 2 * p]
  if key ~= '' then
    -- Length-prefixed, so no two different posts print alike.
    local parts = {}
    for i = at, at + count * 3 - 1 do parts[#parts + 1] = #ARGV[i] .. ':' .. ARGV[i] end
    prints[p] = redis.sha1hex(table.concat(parts))
    local held = known[key]
    if not held then
      local record = redis.call('HGET', IDEMPOTENT, key)
      if record then
        local stored_print, until_ms, ids = string.match(record, '^(%x+) (%d+) (.*)$')
        if tonumber(until_ms) > now then held = { print = stored_print, answer = ids } end
      end
    end
    if held then
      known[key] = held
      if held.print ~= prints[p] then
        refusals[p] = { KEY_REUSED }
      else
        replays[p] = held.answer
      end
    end
  end
  for k = 1, count do
    local i = at + (k - 1) * 3
    if not refusals[p] and not replays[p] then
      if tonumber(ARGV[i + 1]) * 1000 >= expiration then
        refusals[p] = { DELAY_TOO_LONG, k }
      elseif max_size > 0 and #ARGV[i] > max_size then
        refusals[p] = { TOO_LARGE, k, max_size }
      end
    end
  end
  if not refusals[p] and not replays[p] then
    storing = true
    -- Stored: it holds its key for the posts after it (a refused post holds none).
    if key ~= '' then known[key] = { print = prints[p], answer = p } end
  end
  at = at + count * 3
end
-- Each post's answer, with its ids (`ids_of[p]`) in the order given.
local ids_of = {}
local function answer(reply)
  for p = 1, posts do
    local replay = replays[p]
    if type(replay) == 'number' then
      -- Answered like the post of this call that holds its key.
      refusals[p], ids_of[p] = refusals[replay], ids_of[replay]
    elseif replay then
      ids_of[p] = {}
      for id in string.gmatch(replay, '[^,]+') do ids_of[p][#ids_of[p] + 1] = id end
    end
    if refusals[p] then
      for _, v in ipairs(refusals[p]) do reply[#reply + 1] = v end
    else
      reply[#reply + 1] = OK
      for _, id in ipairs(ids_of[p]) do reply[#reply + 1] = id end
    end
  end
  return reply
end
local created = 0
local reply = { OK, created, 0 }
if not storing then return answer(reply) end
-- A queue is numbered on its first post; the number makes its message ids unique store-wide.
local number = cfg[8] or ARGV[5]
if number == '' then return { NEEDS_NUMBER } end
if not cfg[6] then
  create_queue(now, ARGV[2], ARGV[3], ARGV[4])
  reply[2] = 1
end
-- The queue's message count numbers its messages.
local seq = tonumber(cfg[2] or '0')
-- Drop dead ids off the head of READY about every 16th message posted (on the call that
-- crosses a multiple of 16), not on each: it costs two calls, and each trim removes up to
-- MAINTENANCE_BATCH of them.
local posting = 0
for p = 1, posts do posting = posting + tonumber(ARGV[6 + p]) end
if math.floor(seq / 16) ~= math.floor((seq + posting) / 16) or next(known) then
  trim_head(now, expiration)
  -- Idempotency keys whose window is over, a few at a time.
  local over = redis.call('ZRANGEBYSCORE', IDEMPOTENT_DUE, '-inf', now, 'LIMIT', 0, 16)
  if #over > 0 then
    call_many('HDEL', IDEMPOTENT, over)
    call_many('ZREM', IDEMPOTENT_DUE, over)
  end
end
-- Per message stored: its ARGV index, and its id.
local stored, ids, bodies = {}, {}, {}
for p = 1, posts do
  if not refusals[p] and not replays[p] then
    ids_of[p] = {}
    for k = 1, tonumber(ARGV[6 + p]) do
      -- An id is the post time in ms (13 digits), six digits of the queue's message count and
      -- the queue's number: numeric, unique store-wide, and it tells when the message expires.
      seq = seq + 1
      local i = first[p] + (k - 1) * 3
      local id = string.format('%d%06d%s', now, seq % 1000000, number)
      stored[#stored + 1] = i
      ids[#ids + 1] = id
      ids_of[p][k] = #ids
    end
  end
end
-- The queue's ids stamped with this ms were all issued within it, far fewer than a million, so
-- they cannot clash, unless the clock stepped back behind an earlier post: only then look, and
-- move any id in use to a later ms.
local clashes = {}
if now < tonumber(cfg[3] or '0') then clashes = call_many('HMGET', BODY, ids) end
for k, taken in ipairs(clashes) do
  if taken then
    local stamp = now
    repeat
      stamp = stamp + 1
      ids[k] = string.format('%d%s', stamp, string.sub(ids[k], 14))
    until redis.call('HEXISTS', BODY, ids[k]) == 0
  end
end
local ready = {}
for k, id in ipairs(ids) do
  local i = stored[k]
  bodies[#bodies + 1] = id
  bodies[#bodies + 1] = ARGV[i]
  local delay = tonumber(ARGV[i + 1])
  if delay > 0 then
    redis.call('ZADD', delayed_set, now + delay * 1000, id)
  else
    ready[#ready + 1] = id
  end
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', HEADERS, id, ARGV[i + 2])
  end
end
call_many('HSET', BODY, bodies)
if #ready > 0 then
  redis.call('RPUSH', ready_list, unpack(ready))
end
-- (Ids as finally given, a clash moved some.) Keys remember what their posts stored.
for p = 1, posts do
  if ids_of[p] then
    for k, n in ipairs(ids_of[p]) do ids_of[p][k] = ids[n] end
    local key = ARGV[5 + posts + 2 * p]
    if key ~= '' then
      local until_ms = now + tonumber(ARGV[6 + posts + 2 * p])
      redis.call('HSET', IDEMPOTENT, key,
        prints[p] .. ' ' .. until_ms .. ' ' .. table.concat(ids_of[p], ','))
      redis.call('ZADD', IDEMPOTENT_DUE, until_ms, key)
      -- Gone as a whole once no key is live (a queue that stops getting keyed posts).
      for _, k in ipairs({ IDEMPOTENT, IDEMPOTENT_DUE }) do
        if redis.call('PTTL', k) < until_ms - now then redis.call('PEXPIREAT', k, until_ms) end
      end
    end
  end
end
answer(reply)
-- Delayed messages wake waiters too, so they learn when to look again.
wake(ARGV[1], now, math.max(#ready, 1), cfg[7] or '0')
redis.call('HSET', CFG, 'total_messages', seq, 'last_post', math.max(now, tonumber(cfg[3] or '0')),
  'number', number)
reply[3] = check_alerts(cfg[9], now)
return reply
