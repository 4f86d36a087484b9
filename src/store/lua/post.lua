-- post: adds messages at the back of a queue (or to the delayed set), creating the queue with
-- default settings when it does not exist.
-- ARGV[1] wake channel, ARGV[2] id for a new queue, ARGV[3] default message_timeout (s),
-- ARGV[4] default message_expiration (s), then three values per message:
-- body, delay (s), push headers as JSON ('' when none).
-- Returns {created (0|1), id...} with the ids in the order given.
-- Atomic: all messages are stored or none. O(m log n) for m messages.
local now = now_ms()
local created = 0
if redis.call('EXISTS', CFG) == 0 then
  create_queue(now, ARGV[2], ARGV[3], ARGV[4])
  created = 1
end
maintain(now)
local expires = now + tonumber(redis.call('HGET', CFG, 'message_expiration')) * 1000
local reply = { created }
local count = 0
for i = 5, #ARGV, 3 do
  -- Ids are the post time (ms) and a per-queue sequence: unique, ascending, numeric strings.
  local seq, id
  repeat
    seq = redis.call('HINCRBY', CFG, 'tail', 1)
    id = string.format('%d%06d', now, seq % 1000000)
  until redis.call('HEXISTS', BODY, id) == 0
  redis.call('HSET', BODY, id, ARGV[i])
  redis.call('ZADD', EXPIRY, expires, id)
  local delay = tonumber(ARGV[i + 1])
  if delay > 0 then
    redis.call('ZADD', DELAYED, now + delay * 1000, id)
  else
    redis.call('ZADD', READY, seq, id)
  end
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', HEADERS, id, ARGV[i + 2])
  end
  count = count + 1
  reply[count + 1] = id
end
redis.call('HINCRBY', CFG, 'total_messages', count)
wake(ARGV[1], now)
return reply
