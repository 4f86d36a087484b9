-- touch: extends reservations, each under a new reservation id (the old one stops being valid),
-- each on its own (the touches this call carries, see src/store/coalesce.rs).
-- ARGV: four values per touch: message id, current reservation id, timeout (s, 0 = the queue's
-- message_timeout), the new reservation id.
-- Returns {OK, then a status per touch} or {NO_QUEUE}. O(log n) per touch.
local now = now_ms()
local expiration, queue_timeout = load_queue()
if not expiration then return { NO_QUEUE } end
local reply = { OK }
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  local status, where = check_holder(id, ARGV[i + 1], now, expiration)
  if status == OK and where ~= 'reserved' then status = WRONG_RESERVATION end
  if status == OK then
    local timeout = tonumber(ARGV[i + 2])
    if timeout == 0 then timeout = queue_timeout end
    redis.call('ZADD', RESERVED, now + timeout * 1000, id)
    redis.call('HSET', RID, id, ARGV[i + 3])
    redis.call('HINCRBY', RC, id, 1)
  end
  reply[#reply + 1] = status
end
return reply
