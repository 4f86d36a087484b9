-- post: adds messages at the back of a queue (or to the delayed set), creating the queue with
-- default settings when it does not exist. The messages come in posts (the requests this call
-- carries, see src/store/coalesce.rs), each stored whole or refused alone.
-- ARGV[1] wake channel, ARGV[2] id for a new queue, ARGV[3] default message_timeout (s),
-- ARGV[4] default message_expiration (s), ARGV[5] a number for the queue from the store-wide
-- sequence ('' when the caller has none), ARGV[6] the number of posts P, ARGV[7..6+P] the
-- number of messages of each, then three values per message: body, delay (s), push headers as
-- JSON ('' when none).
-- Returns {NEEDS_NUMBER} when the queue has no number yet, none was given and a post is to be
-- stored (nothing is stored then), or {OK, created (0|1), alert messages waiting} followed, per post, by {OK, id...}
-- with its ids in the order given, {DELAY_TOO_LONG, index} when its message `index` would
-- expire before its delay is over, or {TOO_LARGE, index, max} when its body is larger than the
-- queue's max_message_size. Atomic: each post is stored whole or not at all. O(m) for m
-- messages.
local now = now_ms()
local cfg = redis.call('HMGET', CFG, 'message_expiration', 'total_messages', 'last_post', 'type',
  'max_message_size', 'id', 'waiters_until', 'number', 'alerts')
-- Messages posted to a push queue go to its push workers; the others stay for pulling.
local ready_list, delayed_set = READY, DELAYED
if cfg[4] and cfg[4] ~= 'pull' then ready_list, delayed_set = PUSHQ, PUSH_DELAYED end
local expiration = tonumber(cfg[1] or ARGV[4]) * 1000
local max_size = tonumber(cfg[5] or '0')
local posts = tonumber(ARGV[6])
-- Each post's first message (its ARGV index) and whether it is refused (its reply, then).
local first, refusals, storing = {}, {}, false
local at = 7 + posts
for p = 1, posts do
  first[p] = at
  local count = tonumber(ARGV[6 + p])
  for k = 1, count do
    local i = at + (k - 1) * 3
    if not refusals[p] then
      if tonumber(ARGV[i + 1]) * 1000 >= expiration then
        refusals[p] = { DELAY_TOO_LONG, k }
      elseif max_size > 0 and #ARGV[i] > max_size then
        refusals[p] = { TOO_LARGE, k, max_size }
      end
    end
  end
  if not refusals[p] then storing = true end
  at = at + count * 3
end
local created = 0
local reply = { OK, created, 0 }
if not storing then
  for p = 1, posts do
    for _, v in ipairs(refusals[p]) do reply[#reply + 1] = v end
  end
  return reply
end
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
if math.floor(seq / 16) ~= math.floor((seq + posting) / 16) then
  trim_head(now, expiration)
end
-- Per message stored: its ARGV index, and its id.
local stored, ids, bodies = {}, {}, {}
for p = 1, posts do
  if not refusals[p] then
    for k = 1, tonumber(ARGV[6 + p]) do
      -- An id is the post time in ms (13 digits), six digits of the queue's message count and
      -- the queue's number: numeric, unique store-wide, and it tells when the message expires.
      seq = seq + 1
      local i = first[p] + (k - 1) * 3
      local id = string.format('%d%06d%s', now, seq % 1000000, number)
      stored[#stored + 1] = i
      ids[#ids + 1] = id
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
-- Each post's answer, with the ids in the order given.
local next_id = 1
for p = 1, posts do
  if refusals[p] then
    for _, v in ipairs(refusals[p]) do reply[#reply + 1] = v end
  else
    reply[#reply + 1] = OK
    for _ = 1, tonumber(ARGV[6 + p]) do
      reply[#reply + 1] = ids[next_id]
      next_id = next_id + 1
    end
  end
end
-- Delayed messages wake waiters too, so they learn when to look again.
wake(ARGV[1], now, math.max(#ready, 1), cfg[7] or '0')
redis.call('HSET', CFG, 'total_messages', seq, 'last_post', math.max(now, tonumber(cfg[3] or '0')),
  'number', number)
reply[3] = check_alerts(cfg[9], now)
return reply
