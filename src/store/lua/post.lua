-- post: adds messages at the back of a queue (or to the delayed set), creating the queue with
-- default settings when it does not exist.
-- ARGV[1] wake channel, ARGV[2] id for a new queue, ARGV[3] default message_timeout (s),
-- ARGV[4] default message_expiration (s), ARGV[5] the first of as many numbers from the
-- store-wide message sequence as there are messages, then three values per message:
-- body, delay (s), push headers as JSON ('' when none).
-- Returns {OK, created (0|1), id...} with the ids in the order given, or {DELAY_TOO_LONG, index}
-- when a message would expire before its delay is over (nothing is stored then).
-- Atomic: all messages are stored or none. O(m) for m messages.
local now = now_ms()
local expiration = load_queue()
local created = 0
if not expiration then
  expiration = tonumber(ARGV[4]) * 1000
end
for i = 6, #ARGV, 3 do
  if tonumber(ARGV[i + 1]) * 1000 >= expiration then return { DELAY_TOO_LONG, (i - 3) / 3 } end
end
if redis.call('EXISTS', CFG) == 0 then
  create_queue(now, ARGV[2], ARGV[3], ARGV[4])
  created = 1
end
trim_head(now, expiration)
local count = (#ARGV - 5) / 3
local seq = tonumber(ARGV[5]) - 1
local reply = { OK, created }
local ready = {}
for i = 6, #ARGV, 3 do
  -- An id is the post time in ms and six digits of the store-wide sequence: unique, numeric,
  -- and it tells when the message expires. Should the clock step back onto an id in use here,
  -- take the next ms.
  seq = seq + 1
  local stamp = now
  local id = string.format('%d%06d', stamp, seq % 1000000)
  while redis.call('HSETNX', BODY, id, ARGV[i]) == 0 do
    stamp = stamp + 1
    id = string.format('%d%06d', stamp, seq % 1000000)
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
  wake(ARGV[1], now, #ready)
end
redis.call('HINCRBY', CFG, 'total_messages', count)
return reply
