-- info: a queue's settings and counters, after applying what time has done.
-- No ARGV. Returns {status, field, value, ...} with 'size' among the fields. O(log n).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
maintain(now, expiration)
trim_head(now, expiration)
local reply = queue_info()
table.insert(reply, 1, OK)
return reply
