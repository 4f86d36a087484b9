-- push_ack: a subscriber that answered 202 acknowledges the message (DELETE on its
-- subscriber-message URL). The acknowledgement is recorded, and the next delivery round (at
-- once, unless one is running) counts that subscriber as delivered.
-- ARGV[1] message id, ARGV[2] the reservation id the push carried ('' when the caller
-- authenticated with a token instead), ARGV[3] subscriber name, ARGV[4] wake channel.
-- Returns {status}: NO_SUBSCRIBER when the message awaits no acknowledgement from that
-- subscriber, WRONG_RESERVATION when the reservation id is not the one it was given or the
-- acknowledgement came after the wait for it ran out. O(log n).
-- Reads the push state's subscribers.<name>.status, .rid and .due (see src/push/state.rs).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id, rid, name = ARGV[1], ARGV[2], ARGV[3]
if not is_live(id, now, expiration) then return { NO_MESSAGE } end
local round = redis.call('HGET', RID, id)
local raw = redis.call('HGET', PSTATE, id)
local sub = raw and cjson.decode(raw).subscribers[name]
if sub and sub.status == 'deleted' then return { OK } end
local awaited = sub and sub.status == 'reserved'
if awaited then
  if rid ~= '' and rid ~= sub.rid and rid ~= round then return { WRONG_RESERVATION } end
  if sub.due <= now then return { WRONG_RESERVATION } end
elseif round and rid == round then
  -- The push that answered 202 is part of the round still running; its report merges this.
else
  if rid ~= '' and rid ~= round then return { WRONG_RESERVATION } end
  return { NO_SUBSCRIBER }
end
local acks_field = id .. ':acks'
local acks = cjson.decode(redis.call('HGET', PSTATE, acks_field) or '{}')
acks[name] = rid
redis.call('HSET', PSTATE, acks_field, cjson.encode(acks))
if not round then
  -- Waiting between rounds: bring it back to a worker now.
  redis.call('ZADD', CLAIMED, now, id)
  wake(ARGV[4], now, 1)
end
return { OK }
