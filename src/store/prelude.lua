-- prelude: helpers shared by every queue script; each script is loaded as the generated header
-- (see src/store/script.rs), this file, then the script's own file.
-- The header binds the queue's keys, KEYS[1..QUEUE_KEY_COUNT], to the names src/store/keys.rs
-- gives them (CFG, BODY, READY...; what each holds is documented there), lists the keys that hold
-- messages in MESSAGE_KEYS, and defines the statuses every reply starts with (OK, NO_QUEUE...,
-- from src/store/status.rs). All keys of a queue share its hash tag, so every script touches a
-- single Redis Cluster slot.

-- Most entries one call moves out of the reserved and delayed sets, or trims off the head of
-- READY. Bounding it keeps every script O(log n) however far behind the sets are; the next
-- call goes on.
local MAINTENANCE_BATCH = 256

-- One variadic call for a whole batch (HDEL, ZREM, HMGET...): per-call overhead dominates
-- these scripts, so a batch of 100 costs one call, not 100. No-op for an empty list.
local function call_many(command, key, args)
  if #args > 0 then return redis.call(command, key, unpack(args)) end
  return {}
end

-- What names one move of a message out of this queue, for put.lua in the queue it goes to: the
-- queue, the id, and when the message arrived here (a message that comes back later moves
-- again under another name); hashed, to keep the target's record of them small.
local function move_token(id, arrived)
  return redis.sha1hex(CFG .. ':' .. id .. ':' .. (arrived or ''))
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Removes a message. `where` says where its id is when the caller knows: 'reserved',
-- 'delayed', 'claimed', or 'ready' (in READY, PUSHQ or nowhere); nil means look everywhere.
-- An id left in READY or PUSHQ is skipped later.
local function remove_message(id, where)
  redis.call('HDEL', BODY, id)
  redis.call('HDEL', RC, id)
  redis.call('HDEL', RID, id)
  redis.call('HDEL', HEADERS, id)
  redis.call('HDEL', ARRIVED, id)
  if where == nil or where == 'delayed' then redis.call('ZREM', DELAYED, id) end
  if where == nil or where == 'reserved' then redis.call('ZREM', RESERVED, id) end
  if where == nil or where == 'claimed' then redis.call('ZREM', CLAIMED, id) end
  if where == nil then redis.call('ZREM', PUSH_DELAYED, id) end
  -- Push state and recorded acknowledgements, should the message ever have been pushed.
  redis.call('HDEL', PSTATE, id, id .. ':acks')
end

-- Removes what the hashes hold of many messages (body, count, reservation, headers), with one
-- call per hash for them all; the caller takes their ids out of the set they sit in.
local function remove_stored(ids)
  call_many('HDEL', BODY, ids)
  call_many('HDEL', RC, ids)
  call_many('HDEL', RID, ids)
  call_many('HDEL', HEADERS, ids)
  call_many('HDEL', ARRIVED, ids)
end

-- Removes delivered push messages, held under claims, with one call per key for them all.
local function remove_claimed(ids)
  if #ids == 0 then return end
  local push_fields = {}
  for _, id in ipairs(ids) do
    push_fields[#push_fields + 1] = id
    push_fields[#push_fields + 1] = id .. ':acks'
  end
  remove_stored(ids)
  call_many('ZREM', CLAIMED, ids)
  call_many('HDEL', PSTATE, push_fields)
end

-- What names this queue's messages as they are now, in finished push messages kept readable:
-- its id (a queue deleted and made again has another) and how often it was cleared.
local function queue_generation()
  local cfg = redis.call('HMGET', CFG, 'id', 'cleared')
  return (cfg[1] or '') .. '/' .. (cfg[2] or '0')
end

-- The queue's message_expiration (ms), message_timeout (s), type, dead-letter queue ('' when
-- none), its max_reservations, and its alerts (JSON, nil when none), or nil when the queue does
-- not exist: one read for all.
local function load_queue()
  local cfg = redis.call('HMGET', CFG, 'message_expiration', 'message_timeout', 'type',
    'dead_letter_queue', 'dead_letter_max', 'alerts')
  if not cfg[1] then return nil end
  return tonumber(cfg[1]) * 1000, tonumber(cfg[2]), cfg[3], cfg[4] or '', tonumber(cfg[5] or '0'),
    cfg[6]
end

-- Did the size's move from `before` to `after` cross the alert's trigger in its direction?
-- Fixed: the trigger itself; progressive: any multiple of it.
local function crossed(alert, before, after)
  local t = alert.trigger
  if alert.direction == 'desc' then
    if after >= before then return false end
    -- The highest level below `before`, which the size must have reached.
    local level = alert.type == 'progressive' and math.floor((before - 1) / t) * t or t
    return level >= 1 and level < before and after <= level
  end
  if after <= before then return false end
  if alert.type == 'progressive' then return math.floor(after / t) > math.floor(before / t) end
  return before < t and after >= t
end

-- Fires the alerts (`alerts`, the queue's JSON, nil when it has none) the queue's size crossed
-- since the last check (CFG 'alert_size'), whatever changed it meanwhile: each one not
-- snoozed puts a message for its target queue in ALERTS, with an id of its own, and snoozes.
-- The caller's process sends them (ops/alerts.rs). Returns how many wait in ALERTS: 0, and no
-- call, for a queue without alerts, so the check costs the hot path nothing. (A queue whose
-- alerts were removed with messages still waiting keeps an empty list, '[]', until they went.)
local function check_alerts(alerts, now)
  if not alerts then return 0 end
  local size = redis.call('HLEN', BODY)
  local cfg = redis.call('HMGET', CFG, 'alert_size', 'alerts_quiet', 'alert_number')
  local before = tonumber(cfg[1] or size)
  if before ~= size then
    redis.call('HSET', CFG, 'alert_size', size)
    local quiet = cjson.decode(cfg[2] or '{}')
    -- Snoozes still running; `changed` when that is not what is stored.
    local still_quiet, quiet_count, changed = {}, 0, false
    for _, alert in ipairs(cjson.decode(alerts)) do
      local quiet_until = quiet[alert.id]
      if quiet_until and quiet_until > now then
        still_quiet[alert.id] = quiet_until
        quiet_count = quiet_count + 1
      elseif crossed(alert, before, size) then
        if alert.snooze > 0 then
          still_quiet[alert.id] = now + alert.snooze * 1000
          quiet_count = quiet_count + 1
          changed = true
        end
        -- Ids like a post's (see post.lua), numbered by the alerts' own sequence and number.
        local seq = redis.call('HINCRBY', CFG, 'alert_seq', 1)
        local id = string.format('%d%06d%s', now, seq % 1000000, cfg[3])
        redis.call('RPUSH', ALERTS, cjson.encode({ id = id, queue = alert.queue, alert = alert.id,
          type = alert.type, direction = alert.direction, trigger = alert.trigger,
          size = size, at = now }))
      end
    end
    for id in pairs(quiet) do
      if not still_quiet[id] then changed = true end
    end
    if changed and quiet_count == 0 then
      redis.call('HDEL', CFG, 'alerts_quiet')
    elseif changed then
      redis.call('HSET', CFG, 'alerts_quiet', cjson.encode(still_quiet))
    end
  end
  return redis.call('LLEN', ALERTS)
end

-- A message expires message_expiration after it was posted. Its id begins with its post time
-- in ms, 13 digits until the year 2286 (see post.lua), so this needs no lookup and no
-- per-message index; only a message its id says has expired is looked up in ARRIVED, in case
-- it was moved in later (a dead-letter move), when its expiration started again.
local function expired(id, now, expiration)
  local posted = tonumber(string.sub(id, 1, 13))
  if posted == nil or posted + expiration > now then return false end
  local arrived = redis.call('HGET', ARRIVED, id)
  return not arrived or tonumber(arrived) + expiration <= now
end

-- True when the message exists and has not expired. An expired message found here is removed
-- on the spot.
local function is_live(id, now, expiration)
  if expired(id, now, expiration) then
    remove_message(id)
    return false
  end
  return redis.call('HEXISTS', BODY, id) == 1
end

-- Applies what time has done since the last call: puts timed-out reservations back behind the
-- messages already waiting, as IronMQ did (their reservation ids stop being valid), and makes
-- due delayed messages ready (released ones, reserved before, at the front; new ones at the
-- back). Returns true when it stopped at the batch limit with more to do.
local function maintain(now, expiration)
  -- Earliest deadline first, each behind the last: the reservation that ran out first is the
  -- first of them in line. When more ran out than one call moves, the next calls go on.
  local timed_out = redis.call('ZRANGEBYSCORE', RESERVED, '-inf', now, 'LIMIT', 0, MAINTENANCE_BATCH)
  if #timed_out > 0 then
    call_many('ZREM', RESERVED, timed_out)
    call_many('HDEL', RID, timed_out)
    for _, id in ipairs(timed_out) do
      if is_live(id, now, expiration) then redis.call('RPUSH', READY, id) end
    end
  end
  local ready = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, MAINTENANCE_BATCH)
  for _, id in ipairs(ready) do
    redis.call('ZREM', DELAYED, id)
    if is_live(id, now, expiration) then
      if redis.call('HEXISTS', RC, id) == 1 then
        redis.call('LPUSH', READY, id)
      else
        redis.call('RPUSH', READY, id)
      end
    end
  end
  return #timed_out == MAINTENANCE_BATCH or #ready == MAINTENANCE_BATCH
end

-- Drops ids of deleted and expired messages off the head of READY, where the oldest posts sit,
-- so expired messages leave even a queue nobody reserves from (an expired id further back, a
-- timed-out one say, is dropped when it reaches the head or is popped).
local function trim_head(now, expiration)
  for _ = 1, MAINTENANCE_BATCH do
    local id = redis.call('LINDEX', READY, 0)
    if not id or is_live(id, now, expiration) then return end
    redis.call('LPOP', READY)
  end
end

-- May the caller act on message `id` with reservation id `rid` ('' when none was given)?
-- A reserved message needs its current reservation id; an unreserved one needs none, and a
-- reservation id given for it is stale (it timed out or was released). A reservation past its
-- deadline is over even before maintenance puts the message back.
-- Returns the status and, when the message is reserved, 'reserved'.
local function check_holder(id, rid, now, expiration)
  local current = redis.call('HGET', RID, id)
  if current then
    if expired(id, now, expiration) then
      remove_message(id, 'reserved')
      return NO_MESSAGE
    end
    local where = 'reserved'
    local deadline = redis.call('ZSCORE', RESERVED, id)
    if not deadline then
      where = 'claimed'
      deadline = redis.call('ZSCORE', CLAIMED, id)
    end
    if tonumber(deadline or '0') > now then
      if rid == '' then return RESERVATION_REQUIRED end
      if rid ~= current then return WRONG_RESERVATION end
      return OK, where
    end
  end
  if not is_live(id, now, expiration) then return NO_MESSAGE end
  if rid ~= '' then return WRONG_RESERVATION end
  return OK
end

-- Tells waiting long polls (in any process) that `count` messages became ready; silent when
-- none waits.
-- `waiting_until` is the queue's 'waiters_until' when the caller has read it already.
local function wake(channel, now, count, waiting_until)
  waiting_until = waiting_until or redis.call('HGET', CFG, 'waiters_until')
  if tonumber(waiting_until or '0') >= now then
    redis.call('PUBLISH', channel, count)
  end
end

-- Registers a long poll (of any process) that waits until `until_ms`, so that news for the queue
-- is published until then. The queue keeps only the latest such time: a wake-up nobody waits
-- for costs one message on a channel, while a list of waiters would cost every post a lookup.
local function add_waiter(until_ms)
  if until_ms > tonumber(redis.call('HGET', CFG, 'waiters_until') or '0') then
    redis.call('HSET', CFG, 'waiters_until', until_ms)
  end
end

local function create_queue(now, queue_id, timeout, expiration)
  redis.call('HSET', CFG, 'id', queue_id, 'type', 'pull', 'message_timeout', timeout,
    'message_expiration', expiration, 'created_at', now, 'total_messages', 0, 'rev', 0)
end

-- Push maintenance: claims (or waits for a retry or an acknowledgement) that ended go back to
-- the front of PUSHQ, due delayed push messages to its back. Returns true when it stopped at
-- the batch limit with more to do.
local function maintain_push(now, expiration)
  local ended = redis.call('ZREVRANGEBYSCORE', CLAIMED, now, '-inf', 'LIMIT', 0, MAINTENANCE_BATCH)
  for _, id in ipairs(ended) do
    redis.call('ZREM', CLAIMED, id)
    redis.call('HDEL', RID, id)
    if is_live(id, now, expiration) then redis.call('LPUSH', PUSHQ, id) end
  end
  local due_now = redis.call('ZRANGEBYSCORE', PUSH_DELAYED, '-inf', now, 'LIMIT', 0, MAINTENANCE_BATCH)
  for _, id in ipairs(due_now) do
    redis.call('ZREM', PUSH_DELAYED, id)
    if is_live(id, now, expiration) then redis.call('RPUSH', PUSHQ, id) end
  end
  return #ended == MAINTENANCE_BATCH or #due_now == MAINTENANCE_BATCH
end

-- Ms until the first entry of any of `sets` falls due, or -1 when none will.
local function next_due(now, sets)
  local soonest = -1
  for _, set in ipairs(sets) do
    local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
    if #first > 0 then
      local wait = math.max(0, tonumber(first[2]) - now)
      if soonest < 0 or wait < soonest then soonest = wait end
    end
  end
  return soonest
end

-- The queue's settings and counters as a flat field/value list, with its current size.
local function queue_info()
  local info = redis.call('HGETALL', CFG)
  info[#info + 1] = 'size'
  info[#info + 1] = redis.call('HLEN', BODY)
  return info
end
