-- apply: creates a queue or changes its settings, if nobody changed them since the caller read
-- them (compare-and-set on the revision 'rev'), so a read-modify-write of settings is atomic.
-- ARGV[1] id for a new queue, ARGV[2] expected revision ('' when the caller saw no queue),
-- ARGV[3] push settings as JSON ('' for none), then field/value pairs of the other settings.
-- Returns {OK, created (0|1), field, value, ...} like info, or {CONFLICT}. O(1).
local now = now_ms()
local rev = redis.call('HGET', CFG, 'rev')
if (rev or '') ~= ARGV[2] then return { CONFLICT } end
local created = 0
if not rev then
  redis.call('HSET', CFG, 'id', ARGV[1], 'created_at', now, 'total_messages', 0, 'rev', 0)
  created = 1
end
if #ARGV > 3 then
  redis.call('HSET', CFG, unpack(ARGV, 4))
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
