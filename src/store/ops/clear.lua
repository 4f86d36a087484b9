-- clear: removes every message of a queue, reserved or not; settings and counters stay.
-- No ARGV. Returns {status, alert messages waiting}. UNLINK frees the memory in the background, so this is O(1) here.
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local alerts = redis.call('HGET', CFG, 'alerts')
redis.call('UNLINK', unpack(MESSAGE_KEYS))
-- Finished push messages kept readable (see push_report.lua) belong to what was cleared.
redis.call('HINCRBY', CFG, 'cleared', 1)
return { OK, check_alerts(alerts, now_ms()) }
