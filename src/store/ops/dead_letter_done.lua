-- dead_letter_done: ends the move of messages the dead-letter queue now holds: takes them out
-- of DEAD and removes what is stored of them here.
-- ARGV: the ids. Returns {OK, alert messages waiting}. O(m) for m messages, plus one list scan per id.
for _, id in ipairs(ARGV) do
  redis.call('LREM', DEAD, 1, id)
end
remove_stored(ARGV)
return { OK, check_alerts(redis.call('HGET', CFG, 'alerts'), now_ms()) }
