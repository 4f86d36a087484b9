-- info: a queue's settings and counters, after applying what time has done.
-- No ARGV. Returns {status, field, value, ...} with 'size' among the fields. O(log n).
local now = now_ms()
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
maintain(now, expiration_ms())
local reply = queue_info()
table.insert(reply, 1, OK)
return reply
