-- redrive_done: ends the move of messages a redrive's target now holds: takes them out of
-- REDRIVING, removes what is stored of them here, and counts them (once each: an id no longer
-- in REDRIVING, which another runner finished, is not counted again).
-- ARGV[1] the error of the move ('' when none; then no ids follow: the runner gives the
-- redrive up for now), ARGV[2..] the ids.
-- Returns {OK, alert messages waiting}, or {NO_QUEUE}. O(m) for m messages, plus one list scan
-- per id.
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local now = now_ms()
if ARGV[1] ~= '' then
  -- Given up: any process may try again at once.
  redis.call('HSET', REDRIVE, 'error', ARGV[1], 'updated_at', now, 'owner', '', 'lease', 0)
  return { OK, 0 }
end
local done = {}
for i = 2, #ARGV do
  if redis.call('LREM', REDRIVING, 1, ARGV[i]) > 0 then done[#done + 1] = ARGV[i] end
end
remove_stored(done)
redis.call('HINCRBY', REDRIVE, 'moved', #done)
redis.call('HSET', REDRIVE, 'updated_at', now)
redis.call('HDEL', REDRIVE, 'error')
return { OK, check_alerts(redis.call('HGET', CFG, 'alerts'), now) }
