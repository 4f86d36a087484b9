-- redrive_cancel: stops a running redrive; the messages it set aside go back to the front when
-- its runner (or, should that have died, another process) next looks (redrive_take), so a move
-- under way is never cut in two. No ARGV. Returns {OK} or {NO_QUEUE}. O(1).
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
if redis.call('HGET', REDRIVE, 'state') == 'running' then
  redis.call('HSET', REDRIVE, 'state', 'cancelled', 'updated_at', now_ms())
end
return { OK }
