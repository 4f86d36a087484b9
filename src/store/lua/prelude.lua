-- prelude: shared by every queue script; the store prepends it to each script when loading.
-- KEYS[1..10] are the keys of one queue, all under the queue's hash tag (see src/store/keys.rs),
-- so every script touches a single Redis Cluster slot.
local CFG, BODY, RC, RID, READY, DELAYED, RESERVED, EXPIRY, WAITERS, HEADERS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]

-- First element of every reply; mirrored by `Status` in src/store/mod.rs.
local OK, NO_QUEUE, NO_MESSAGE, RESERVATION_REQUIRED, WRONG_RESERVATION = 0, 1, 2, 3, 4

-- Most entries one call moves out of the expiry, reserved and delayed sets. Bounding it keeps
-- every script O(log n) however far behind the clock the sets are; the next call goes on.
local MAINTENANCE_BATCH = 256

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- READY is a sorted set ordered by position: new messages take increasing positions at the
-- back ('tail'), released and timed-out ones decreasing positions at the front ('head').
local function push_front(id)
  redis.call('ZADD', READY, redis.call('HINCRBY', CFG, 'head', -1), id)
end

local function push_back(id)
  redis.call('ZADD', READY, redis.call('HINCRBY', CFG, 'tail', 1), id)
end

local function remove_message(id)
  redis.call('HDEL', BODY, id)
  redis.call('HDEL', RC, id)
  redis.call('HDEL', RID, id)
  redis.call('HDEL', HEADERS, id)
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', RESERVED, id)
  redis.call('ZREM', EXPIRY, id)
end

local function due(set, now)
  return redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, MAINTENANCE_BATCH)
end

-- Applies what time has done since the last call: drops expired messages, puts timed-out
-- reservations back at the front (their reservation ids stop being valid) and makes due
-- delayed messages ready: released ones (reserved before) at the front, new ones at the back.
local function maintain(now)
  for _, id in ipairs(due(EXPIRY, now)) do
    remove_message(id)
  end
  local timed_out = due(RESERVED, now)
  -- Backwards, so the reservation that ran out first ends up first in line.
  for i = #timed_out, 1, -1 do
    local id = timed_out[i]
    redis.call('ZREM', RESERVED, id)
    redis.call('HDEL', RID, id)
    push_front(id)
  end
  for _, id in ipairs(due(DELAYED, now)) do
    redis.call('ZREM', DELAYED, id)
    if redis.call('HEXISTS', RC, id) == 1 then push_front(id) else push_back(id) end
  end
end

-- True when the message exists and has not outlived the queue's message_expiration.
-- An expired message found here is removed on the spot.
local function is_live(id, now)
  local expires = redis.call('ZSCORE', EXPIRY, id)
  if expires and tonumber(expires) <= now then
    remove_message(id)
    return false
  end
  return redis.call('HEXISTS', BODY, id) == 1
end

-- May the caller act on message `id` with reservation id `rid` ('' when none was given)?
-- A reserved message needs its current reservation id; an unreserved one needs none, and a
-- reservation id given for it is stale (it timed out or was released).
local function check_holder(id, rid, now)
  if not is_live(id, now) then return NO_MESSAGE end
  local current = redis.call('HGET', RID, id)
  if not current then
    if rid == '' then return OK end
    return WRONG_RESERVATION
  end
  if rid == '' then return RESERVATION_REQUIRED end
  if rid ~= current then return WRONG_RESERVATION end
  return OK
end

-- Tells waiting long polls (in any process) that the queue has news; silent when none waits.
local function wake(channel, now)
  redis.call('ZREMRANGEBYSCORE', WAITERS, '-inf', now)
  if redis.call('ZCARD', WAITERS) > 0 then
    redis.call('PUBLISH', channel, '1')
  end
end

local function create_queue(now, queue_id, timeout, expiration)
  redis.call('HSET', CFG, 'id', queue_id, 'type', 'pull', 'message_timeout', timeout,
    'message_expiration', expiration, 'created_at', now, 'total_messages', 0, 'head', 0, 'tail', 0)
end

-- The queue's settings and counters as a flat field/value list, with its current size.
local function queue_info()
  local info = redis.call('HGETALL', CFG)
  info[#info + 1] = 'size'
  info[#info + 1] = redis.call('HLEN', BODY)
  return info
end
