-- push_ack: a subscriber that answered 202 acknowledges the message (DELETE on its
-- subscriber-message URL). ARGV[1] message id, ARGV[2] reservation id from the push request
-- ('' when the caller authenticated with a token instead), ARGV[3] subscriber name,
-- ARGV[4] s to keep the push state readable once delivery is over, ARGV[5] wake channel.
-- KEYS[14] where the push state of a delivered message is kept.
-- Returns {status}: NO_SUBSCRIBER when the message was not pushed to that subscriber,
-- WRONG_RESERVATION when the acknowledgement came too late (the message is being retried).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id, name = ARGV[1], ARGV[3]
if not is_live(id, now, expiration) then return { NO_MESSAGE } end
local current = redis.call('HGET', RID, id)
if ARGV[2] ~= '' and ARGV[2] ~= current then return { WRONG_RESERVATION } end
local raw = redis.call('HGET', PSTATE, id)
if not raw then return { NO_SUBSCRIBER } end
local state = cjson.decode(raw)
local sub = state.subscribers[name]
if not sub then return { NO_SUBSCRIBER } end
if sub.status == 'deleted' then return { OK } end
if sub.status ~= 'reserved' or not current then return { WRONG_RESERVATION } end
sub.status = 'deleted'
-- Over when every subscriber is done with (multicast), or this one took it (unicast).
local over, failed = true, false
if state.mode == 'all' then
  for _, s in pairs(state.subscribers) do
    if s.status == 'error' then failed = true end
    if s.status ~= 'deleted' and s.status ~= 'error' then over = false end
  end
end
local encoded = cjson.encode(state)
if over and not failed then
  remove_message(id, 'claimed')
  local keep = tonumber(ARGV[4])
  if keep > 0 then redis.call('SET', KEYS[14], encoded, 'EX', keep) end
else
  redis.call('HSET', PSTATE, id, encoded)
  -- With failures left to report, a worker takes it up at once to fill the error queue.
  if over then
    redis.call('ZADD', CLAIMED, now, id)
    wake(ARGV[5], now, 1)
  end
end
return { OK }
