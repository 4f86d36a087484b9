-- push_report: records the outcome of a delivery round, if the worker still holds the claim.
-- ARGV[1] message id, ARGV[2] the claim's reservation id, ARGV[3] 'delete' (delivery is over)
-- or 'wait' (some subscribers are to be tried again, or their acknowledgement is awaited),
-- ARGV[4] push state as JSON, ARGV[5] for 'wait': ms until the next round; for 'delete': s to
-- keep the push state readable (0 = not at all). ARGV[6] wake channel.
-- KEYS[14] where the push state of a delivered message is kept.
-- Returns {status}: WRONG_RESERVATION when the claim ended and another worker may hold it.
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local id = ARGV[1]
if redis.call('HGET', RID, id) ~= ARGV[2] then return { WRONG_RESERVATION } end
if ARGV[3] == 'delete' then
  remove_message(id, 'claimed')
  local keep = tonumber(ARGV[5])
  if keep > 0 then redis.call('SET', KEYS[14], ARGV[4], 'EX', keep) end
else
  redis.call('HSET', PSTATE, id, ARGV[4])
  redis.call('ZADD', CLAIMED, now + tonumber(ARGV[5]), id)
  -- Workers waiting on the queue learn when this message is due again.
  wake(ARGV[6], now, 1)
end
return { OK }
