-- dead_letter_done: ends the move of messages the dead-letter queue now holds: takes them out
-- of DEAD and removes what is stored of them here. An id no longer in DEAD (the message came
-- back meanwhile: a put here took it back, see put.lua) is left alone.
-- ARGV: the ids. Returns {OK, alert messages waiting}. O(m) for m messages, plus one list scan per id.
local done = {}
for _, id in ipairs(ARGV) do
  if redis.call('LREM', DEAD, 1, id) > 0 then done[#done + 1] = id end
end
remove_stored(done)
return { OK, check_alerts(redis.call('HGET', CFG, 'alerts'), now_ms()) }
