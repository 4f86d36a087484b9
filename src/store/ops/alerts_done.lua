-- alerts_done: takes alert messages their target queue now holds off ALERTS; with none, the
-- sender gives up for now, and any process may send them at once.
-- ARGV: the messages, as listed. Returns {OK}. O(m) list scans for m messages.
if #ARGV == 0 then redis.call('HDEL', CFG, 'alerts_sender', 'alerts_sender_until') end
for _, entry in ipairs(ARGV) do redis.call('LREM', ALERTS, 1, entry) end
return { OK }
