-- release: ends the reservation of a message and puts it back at the front of the queue, at
-- once or after `delay` seconds. ARGV[1] wake channel, ARGV[2] message id, ARGV[3] current
-- reservation id, ARGV[4] delay (s). Returns {status}. O(log n).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id = ARGV[2]
local status, where = check_holder(id, ARGV[3], now, expiration)
if status ~= OK then return { status } end
if where ~= 'reserved' then return { WRONG_RESERVATION } end
redis.call('ZREM', RESERVED, id)
redis.call('HDEL', RID, id)
local delay = tonumber(ARGV[4])
if delay > 0 then
  redis.call('ZADD', DELAYED, now + delay * 1000, id)
else
  redis.call('LPUSH', READY, id)
end
-- A delayed release wakes waiters too, so they learn when to look again.
wake(ARGV[1], now, 1)
return { OK }
