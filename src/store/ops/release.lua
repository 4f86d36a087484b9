-- release: ends reservations and puts the messages back at the front of the queue, at once or
-- after a delay, each on its own (the releases this call carries, see src/store/coalesce.rs).
-- ARGV[1] wake channel, then three values per release: message id, current reservation id,
-- delay (s).
-- Returns {OK, then a status per release} or {NO_QUEUE}. O(log n) per release.
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local reply = { OK }
local released = 0
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local status, where = check_holder(id, ARGV[i + 1], now, expiration)
  if status == OK and where ~= 'reserved' then status = WRONG_RESERVATION end
  if status == OK then
    redis.call('ZREM', RESERVED, id)
    redis.call('HDEL', RID, id)
    local delay = tonumber(ARGV[i + 2])
    if delay > 0 then
      redis.call('ZADD', DELAYED, now + delay * 1000, id)
    else
      redis.call('LPUSH', READY, id)
    end
    released = released + 1
  end
  reply[#reply + 1] = status
end
-- A delayed release wakes waiters too, so they learn when to look again.
if released > 0 then wake(ARGV[1], now, released) end
return reply
