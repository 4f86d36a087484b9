-- reserve: hands out up to n ready messages from the front of a queue, each under a fresh
-- reservation that lasts `timeout` seconds, or removes them at once when `delete` is set.
-- ARGV[1] n, ARGV[2] timeout (s, 0 = the queue's message_timeout), ARGV[3] delete (1|0),
-- ARGV[4] waiter id ('' = no long poll), ARGV[5] wait (ms), ARGV[6..] one new reservation id
-- per message.
-- Returns {status, next_due, then id, body, reserved_count, reservation_id per message}.
-- When nothing is ready and a waiter id is given, the waiter is registered (so a later post
-- publishes a wake-up) and next_due is the ms until a delayed message or a reservation falls
-- due (-1 when none will). Atomic; O(n log n), plus one pop per deleted id met on the way.
local now = now_ms()
local expiration, queue_timeout, queue_type = load_queue()
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
local n = tonumber(ARGV[1])
local timeout = tonumber(ARGV[2])
if timeout == 0 then timeout = queue_timeout end
local deadline = now + timeout * 1000
local delete = ARGV[3] == '1'
local reply = { OK, -1 }
local got = 0
local source = 1
while got < n and sources[source] do
  local popped = redis.call('LPOP', sources[source], n - got)
  if not popped then
    source = source + 1
    popped = {}
  end
  local ids = {}
  for _, id in ipairs(popped) do
    if expired(id, now, expiration) then remove_message(id, 'ready') else ids[#ids + 1] = id end
  end
  local bodies = call_many('HMGET', BODY, ids)
  local counts = call_many('HMGET', RC, ids)
  local taken, new_counts, deadlines, holders = {}, {}, {}, {}
  for k, id in ipairs(ids) do
    -- No body: the message was deleted while its id waited in READY.
    if bodies[k] then
      got = got + 1
      local count = tonumber(counts[k] or '0') + 1
      local rid = ''
      if not delete then
        rid = ARGV[5 + got]
        deadlines[#deadlines + 1] = deadline
        deadlines[#deadlines + 1] = id
        holders[#holders + 1] = id
        holders[#holders + 1] = rid
      end
      taken[#taken + 1] = id
      new_counts[#new_counts + 1] = id
      new_counts[#new_counts + 1] = count
      reply[#reply + 1] = id
      reply[#reply + 1] = bodies[k]
      reply[#reply + 1] = count
      reply[#reply + 1] = rid
    end
  end
  if delete then
    call_many('HDEL', BODY, taken)
    call_many('HDEL', RC, taken)
    call_many('HDEL', HEADERS, taken)
  else
    call_many('HSET', RC, new_counts)
    call_many('ZADD', RESERVED, deadlines)
    call_many('HSET', RID, holders)
  end
end
if got == 0 and ARGV[4] ~= '' then
  add_waiter(now + tonumber(ARGV[5]))
  reply[2] = next_due(now, { DELAYED, RESERVED })
end
return reply
