-- get: reads one message by id, reserved or not, without changing it.
-- ARGV[1] message id. Returns {status, body, reserved_count}. O(1).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id = ARGV[1]
if expired(id, now, expiration) then return { NO_MESSAGE } end
local body = redis.call('HGET', BODY, id)
if not body then return { NO_MESSAGE } end
return { OK, body, tonumber(redis.call('HGET', RC, id) or '0') }
