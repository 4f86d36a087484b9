-- dead_letter_take: the first messages waiting in DEAD to be moved to the dead-letter queue,
-- as they are stored here. Changes nothing for them: they stay until dead_letter_done.
-- ARGV[1] most messages to return.
-- Returns {OK, then per message: id, body, reserved_count, push headers ('' when none), move
-- token (see move_token)}. An id
-- whose message is gone (deleted, or moved by another caller) is dropped from DEAD instead, and
-- so is one that expired here meanwhile, with the message, as expiry removes any message.
local now = now_ms()
local expiration = load_queue()
if not expiration then return { OK } end
local ids = redis.call('LRANGE', DEAD, 0, tonumber(ARGV[1]) - 1)
local bodies = call_many('HMGET', BODY, ids)
local counts = call_many('HMGET', RC, ids)
local headers = call_many('HMGET', HEADERS, ids)
local arrived = call_many('HMGET', ARRIVED, ids)
local reply = { OK }
for k, id in ipairs(ids) do
  if bodies[k] and not expired(id, now, expiration) then
    reply[#reply + 1] = id
    reply[#reply + 1] = bodies[k]
    reply[#reply + 1] = counts[k] or '0'
    reply[#reply + 1] = headers[k] or ''
    reply[#reply + 1] = move_token(id, arrived[k])
  else
    if bodies[k] then remove_stored({ id }) end
    redis.call('LREM', DEAD, 1, id)
  end
end
return reply
