-- reserve: hands out ready messages from the front of a queue, each under a fresh reservation
-- that lasts its request's timeout, or removes them at once for a request that deletes. The
-- messages go to the requests this call carries (see src/store/coalesce.rs) in their order:
-- the first takes up to its n, the next up to its n, and so on.
-- ARGV[1] waiter id ('' = no long poll), ARGV[2] wait (ms), ARGV[3] the number of requests R,
-- then four values per request: n, timeout (s, 0 = the queue's message_timeout), delete
-- (1|0), long poll (1|0); then one new reservation id per message a request that does not
-- delete may get.
-- Returns {status, next_due, then per request: the number of messages k, and k times id,
-- body, reserved_count, reservation_id ('' when deleted), push headers ('' when none: they
-- carry a message's trace context); then the dead-letter queue ('' when
-- none), how many messages wait in DEAD to be moved there, and how many alert messages wait}.
-- A message reserved max_reservations times already is not handed out: it goes to DEAD, still
-- stored here, and the caller moves it to the dead-letter queue (ops/dead_letter.rs).
-- When a long-polling request got nothing and a waiter id is given, the waiter is registered
-- (so a later post publishes a wake-up) and next_due is the ms until a delayed message or a
-- reservation falls due (-1 when none will). Atomic; O(n log n) for n messages in all, plus one
-- pop per deleted id met on the way.
local now = now_ms()
local expiration, queue_timeout, queue_type, dead_letter, max_reservations, alerts = load_queue()
if not expiration then return { NO_QUEUE } end
-- A queue switched back to pull hands out what still waited for push, after its own messages.
local sources = { READY }
if queue_type == 'pull' then
  sources[2] = PUSHQ
  maintain_push(now, expiration)
end
-- A few rounds, so a burst of lapsed reservations comes back in order before any is handed out.
for _ = 1, 4 do
  if not maintain(now, expiration) then break end
end
local requests = tonumber(ARGV[3])
local total = 0
for r = 1, requests do total = total + tonumber(ARGV[4 * r]) end
-- The live messages at the front, in order: ids, bodies and their reserved counts so far.
local ids, bodies, counts, headers, dead = {}, {}, {}, {}, {}
local source = 1
while #ids < total and sources[source] and #dead < MAINTENANCE_BATCH do
  local popped = redis.call('LPOP', sources[source], total - #ids)
  if not popped then
    source = source + 1
    popped = {}
  end
  local live = {}
  for _, id in ipairs(popped) do
    if expired(id, now, expiration) then remove_message(id, 'ready') else live[#live + 1] = id end
  end
  local found = call_many('HMGET', BODY, live)
  local found_counts = call_many('HMGET', RC, live)
  local found_headers = call_many('HMGET', HEADERS, live)
  for k, id in ipairs(live) do
    -- No body: the message was deleted while its id waited in READY.
    if found[k] then
      local count = tonumber(found_counts[k] or '0') + 1
      if dead_letter ~= '' and count > max_reservations then
        dead[#dead + 1] = id
      else
        ids[#ids + 1] = id
        bodies[#bodies + 1] = found[k]
        counts[#counts + 1] = count
        headers[#ids] = found_headers[k] or ''
      end
    end
  end
end
if #dead > 0 then redis.call('RPUSH', DEAD, unpack(dead)) end
local reply = { OK, -1 }
local new_counts, deadlines, holders, deleted = {}, {}, {}, {}
local next_rid = 4 + 4 * requests
local m = 1
local short = false
for r = 1, requests do
  local n, timeout, delete = tonumber(ARGV[4 * r]), tonumber(ARGV[4 * r + 1]), ARGV[4 * r + 2] == '1'
  if timeout == 0 then timeout = queue_timeout end
  local deadline = now + timeout * 1000
  local k = math.min(n, #ids - m + 1)
  if k == 0 and ARGV[4 * r + 3] == '1' then short = true end
  reply[#reply + 1] = k
  for _ = 1, k do
    local id = ids[m]
    local rid = ''
    if delete then
      deleted[#deleted + 1] = id
    else
      rid = ARGV[next_rid]
      next_rid = next_rid + 1
      new_counts[#new_counts + 1] = id
      new_counts[#new_counts + 1] = counts[m]
      deadlines[#deadlines + 1] = deadline
      deadlines[#deadlines + 1] = id
      holders[#holders + 1] = id
      holders[#holders + 1] = rid
    end
    reply[#reply + 1] = id
    reply[#reply + 1] = bodies[m]
    reply[#reply + 1] = counts[m]
    reply[#reply + 1] = rid
    reply[#reply + 1] = headers[m]
    m = m + 1
  end
end
call_many('HDEL', BODY, deleted)
call_many('HDEL', RC, deleted)
call_many('HDEL', HEADERS, deleted)
call_many('HDEL', ARRIVED, deleted)
call_many('HSET', RC, new_counts)
call_many('ZADD', RESERVED, deadlines)
call_many('HSET', RID, holders)
if short and ARGV[1] ~= '' then
  add_waiter(now + tonumber(ARGV[2]))
  reply[2] = next_due(now, { DELAYED, RESERVED })
end
reply[#reply + 1] = dead_letter
reply[#reply + 1] = dead_letter ~= '' and redis.call('LLEN', DEAD) or 0
reply[#reply + 1] = check_alerts(alerts, now)
return reply
