-- touch: extends the reservation of a message under a new reservation id; the old one stops
-- being valid. ARGV[1] message id, ARGV[2] current reservation id, ARGV[3] timeout (s, 0 = the
-- queue's message_timeout), ARGV[4] the new reservation id. Returns {status}. O(log n).
local now = now_ms()
local expiration, queue_timeout = load_queue()
if not expiration then return { NO_QUEUE } end
local id = ARGV[1]
local status, where = check_holder(id, ARGV[2], now, expiration)
if status ~= OK then return { status } end
if where ~= 'reserved' then return { WRONG_RESERVATION } end
local timeout = tonumber(ARGV[3])
if timeout == 0 then timeout = queue_timeout end
redis.call('ZADD', RESERVED, now + timeout * 1000, id)
redis.call('HSET', RID, id, ARGV[4])
redis.call('HINCRBY', RC, id, 1)
return { OK }
