-- push_report: records the outcome of a delivery round, if the worker still holds the claim.
-- ARGV[1] message id, ARGV[2] the claim's reservation id, ARGV[3] 'delete' (delivery is over),
-- 'wait' (some subscribers are to be tried again, or their acknowledgement is awaited), or
-- 'hold' (record the state but keep the claim, for work after the round: the error queue),
-- ARGV[4] push state as JSON, ARGV[5] for 'wait': ms until the next round; for 'delete': s to
-- keep the push state readable (0 = not at all). ARGV[6] wake channel, ARGV[7] the
-- acknowledgements the round started with ('' when none): they are merged into the state.
-- ARGV[8] revision of the queue settings the round ran with: when they changed since (a
-- subscriber added or removed), 'delete' and 'hold' are not final: the message comes back at
-- once for a round on the new settings, and CONFLICT is returned.
-- KEYS[13] where the push state of a delivered message is kept.
-- Returns {status}: WRONG_RESERVATION when the claim ended and another worker may hold it.
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id = ARGV[1]
if redis.call('HGET', RID, id) ~= ARGV[2] then return { WRONG_RESERVATION } end
local acks_field = id .. ':acks'
local outcome = OK
if (ARGV[3] == 'delete' or ARGV[3] == 'hold') and redis.call('HGET', CFG, 'rev') ~= ARGV[8] then
  ARGV[3], ARGV[5], outcome = 'wait', '0', CONFLICT
end
if ARGV[3] == 'delete' then
  remove_message(id, 'claimed')
  local keep = tonumber(ARGV[5])
  if keep > 0 then redis.call('SET', KEYS[13], ARGV[4], 'EX', keep) end
  return { OK }
end
if ARGV[3] == 'hold' then
  redis.call('HSET', PSTATE, id, ARGV[4])
  redis.call('ZADD', CLAIMED, now + tonumber(ARGV[5]), id)
  return { OK }
end
-- The round is over: the message waits without a holder until it is due again.
redis.call('HDEL', RID, id)
redis.call('HSET', PSTATE, id, ARGV[4])
local due = now + tonumber(ARGV[5])
local acks = redis.call('HGET', PSTATE, acks_field)
if acks == ARGV[7] then
  redis.call('HDEL', PSTATE, acks_field)
elseif acks then
  -- Acknowledged while the round ran: a worker merges that at once.
  due = now
end
redis.call('ZADD', CLAIMED, due, id)
-- Workers waiting on the queue learn when this message is due again.
wake(ARGV[6], now, 1)
return { outcome }
