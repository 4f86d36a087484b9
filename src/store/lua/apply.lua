-- apply: creates a queue or changes its settings; fields not given keep their value (or get
-- their default on creation). ARGV[1] id for a new queue, ARGV[2] default message_timeout,
-- ARGV[3] default message_expiration, ARGV[4] may create (1|0), then field/value pairs.
-- Returns {status, created (0|1), field, value, ...} like info. O(1).
local now = now_ms()
local created = 0
if redis.call('EXISTS', CFG) == 0 then
  if ARGV[4] ~= '1' then return { NO_QUEUE } end
  create_queue(now, ARGV[1], ARGV[2], ARGV[3])
  created = 1
end
if #ARGV > 4 then
  redis.call('HSET', CFG, unpack(ARGV, 5))
end
local reply = queue_info()
table.insert(reply, 1, created)
table.insert(reply, 1, OK)
return reply
