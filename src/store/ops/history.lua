-- history: adds one process's activity to a queue's per-minute history, and the queue's depth
-- now. KEYS[QUEUE_KEY_COUNT + 1] the history hash: field minute % 1440 -> "minute posted
-- reserved deleted depth", so it never holds more than a day of minutes. ARGV: the minute
-- (since the epoch), posted, reserved, deleted. Returns {status}. O(1).
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local history = KEYS[QUEUE_KEY_COUNT + 1]
local minute = tonumber(ARGV[1])
local field = tostring(minute % 1440)
local posted, reserved, deleted = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local kept = redis.call('HGET', history, field)
if kept then
  local m, p, r, d = string.match(kept, '^(%d+) (%d+) (%d+) (%d+)')
  -- The slot of the same minute a day ago starts over.
  if tonumber(m) == minute then
    posted = posted + tonumber(p)
    reserved = reserved + tonumber(r)
    deleted = deleted + tonumber(d)
  end
end
local depth = redis.call('HLEN', BODY)
redis.call('HSET', history, field,
  string.format('%d %d %d %d %d', minute, posted, reserved, deleted, depth))
return { OK }
