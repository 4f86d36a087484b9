-- delete: removes one message. A reserved message needs its current reservation id.
-- ARGV[1] message id, ARGV[2] reservation id ('' when none). Returns {status}. O(log n).
local now = now_ms()
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local expiration = expiration_ms()
maintain(now, expiration)
local status = check_holder(ARGV[1], ARGV[2], now, expiration)
if status == OK then remove_message(ARGV[1]) end
return { status }
