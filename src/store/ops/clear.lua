-- clear: removes every message of a queue, reserved or not; settings and counters stay.
-- No ARGV. Returns {status}. UNLINK frees the memory in the background, so this is O(1) here.
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
redis.call('UNLINK', unpack(MESSAGE_KEYS))
-- Finished push messages kept readable (see push_report.lua) belong to what was cleared.
redis.call('HINCRBY', CFG, 'cleared', 1)
return { OK }
