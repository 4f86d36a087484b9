-- apply: creates a queue or changes its settings, if nobody changed them since the caller read
-- them (compare-and-set on the revision 'rev'), so a read-modify-write of settings is atomic.
-- ARGV[1] id for a new queue, ARGV[2] expected revision ('' when the caller saw no queue),
-- ARGV[3] push settings as JSON ('' for none), ARGV[4] alerts as JSON ('' for none), ARGV[5] a
-- number from the store-wide sequence ('' when the caller has none), then field/value pairs of
-- the other settings.
-- Returns {OK, created (0|1), field, value, ...} like info, {CONFLICT}, or {NEEDS_NUMBER} when
-- alerts are set on a queue that has no alert number yet and none was given. O(1).
local now = now_ms()
local rev = redis.call('HGET', CFG, 'rev')
if (rev or '') ~= ARGV[2] then return { CONFLICT } end
-- A queue's alert messages are numbered like posts, by a number of their own (check_alerts).
local alert_number = redis.call('HGET', CFG, 'alert_number')
if ARGV[4] ~= '' and not alert_number then
  if ARGV[5] == '' then return { NEEDS_NUMBER } end
  redis.call('HSET', CFG, 'alert_number', ARGV[5])
end
local created = 0
if not rev then
  redis.call('HSET', CFG, 'id', ARGV[1], 'created_at', now, 'total_messages', 0, 'rev', 0)
  created = 1
end
if #ARGV > 5 then
  redis.call('HSET', CFG, unpack(ARGV, 6))
end
if ARGV[4] == '' and redis.call('EXISTS', ALERTS) == 1 then
  -- Their messages still to send are reported by the next change (check_alerts).
  redis.call('HSET', CFG, 'alerts', '[]')
elseif ARGV[4] == '' then
  redis.call('HDEL', CFG, 'alerts', 'alert_size', 'alerts_quiet')
else
  redis.call('HSET', CFG, 'alerts', ARGV[4])
  -- Alerts watch the size from now on.
  if not redis.call('HGET', CFG, 'alert_size') then
    redis.call('HSET', CFG, 'alert_size', redis.call('HLEN', BODY))
  end
end
if ARGV[3] == '' then
  redis.call('HDEL', CFG, 'push')
else
  redis.call('HSET', CFG, 'push', ARGV[3])
end
-- Messages waiting to move to a dead-letter queue that is no longer set go back to the front,
-- where the reserve that set them aside found them.
if (redis.call('HGET', CFG, 'dead_letter_queue') or '') == '' then
  local waiting = redis.call('LRANGE', DEAD, 0, -1)
  if #waiting > 0 then
    redis.call('DEL', DEAD)
    for i = #waiting, 1, -1 do redis.call('LPUSH', READY, waiting[i]) end
  end
end
redis.call('HINCRBY', CFG, 'rev', 1)
local reply = queue_info()
table.insert(reply, 1, created)
table.insert(reply, 1, OK)
return reply
