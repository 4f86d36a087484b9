-- get: reads one message by id, reserved or not, without changing it; a finished push message
-- while it is kept (KEYS[QUEUE_KEY_COUNT + 1], see push_report.lua) too.
-- ARGV[1] message id. Returns {status, body, reserved_count}. O(1).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id = ARGV[1]
if expired(id, now, expiration) then return { NO_MESSAGE } end
local body = redis.call('HGET', BODY, id)
if body then return { OK, body, tonumber(redis.call('HGET', RC, id) or '0') } end
local kept = redis.call('HMGET', KEYS[QUEUE_KEY_COUNT + 1], 'body', 'reserved_count', 'queue')
if kept[1] and kept[3] == queue_generation() then
  return { OK, kept[1], tonumber(kept[2]) }
end
return { NO_MESSAGE }
