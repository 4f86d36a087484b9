-- get: reads one message by id, reserved or not, without changing it.
-- ARGV[1] message id. Returns {status, body, reserved_count}. O(log n).
local now = now_ms()
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local id = ARGV[1]
if not is_live(id, now, expiration_ms()) then return { NO_MESSAGE } end
return { OK, redis.call('HGET', BODY, id), tonumber(redis.call('HGET', RC, id) or '0') }
