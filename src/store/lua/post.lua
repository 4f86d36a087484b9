-- post: adds messages at the back of a queue (or to the delayed set), creating the queue with
-- default settings when it does not exist.
-- ARGV[1] wake channel, ARGV[2] id for a new queue, ARGV[3] default message_timeout (s),
-- ARGV[4] default message_expiration (s), then three values per message:
-- body, delay (s), push headers as JSON ('' when none).
-- Returns {created (0|1), id...} with the ids in the order given.
-- Atomic: all messages are stored or none. O(m) for m messages.
local now = now_ms()
local created = 0
if redis.call('EXISTS', CFG) == 0 then
  create_queue(now, ARGV[2], ARGV[3], ARGV[4])
  created = 1
end
maintain(now, expiration_ms())
local count = (#ARGV - 4) / 3
local seq = redis.call('HINCRBY', CFG, 'tail', count) - count
local reply = { created }
local ready = {}
for i = 5, #ARGV, 3 do
  -- An id is the post time in ms and six digits of a per-queue sequence: unique, ascending,
  -- numeric. Should the clock step back onto a used id, take the next sequence number.
  seq = seq + 1
  local id = string.format('%d%06d', now, seq % 1000000)
  while redis.call('HSETNX', BODY, id, ARGV[i]) == 0 do
    seq = redis.call('HINCRBY', CFG, 'tail', 1)
    id = string.format('%d%06d', now, seq % 1000000)
  end
  local delay = tonumber(ARGV[i + 1])
  if delay > 0 then
    redis.call('ZADD', DELAYED, now + delay * 1000, id)
  else
    ready[#ready + 1] = id
  end
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', HEADERS, id, ARGV[i + 2])
  end
  reply[#reply + 1] = id
end
if #ready > 0 then
  redis.call('RPUSH', READY, unpack(ready))
end
redis.call('HINCRBY', CFG, 'total_messages', count)
wake(ARGV[1], now)
return reply
