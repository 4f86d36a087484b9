-- alerts_take: the first alert messages waiting in ALERTS, for the one process sending them
-- (holding CFG 'alerts_sender' until 'alerts_sender_until'); they stay listed until
-- alerts_done. Nothing while another process holds the lease; the lease ends when the list is
-- empty. ARGV[1] sender id, ARGV[2] lease (ms), ARGV[3] most messages.
-- Returns {OK, state ('sending', 'taken' by another sender, 'done'), then the messages}. O(k).
if redis.call('EXISTS', CFG) == 0 then return { OK, 'done' } end
local now = now_ms()
local sender = redis.call('HMGET', CFG, 'alerts_sender', 'alerts_sender_until')
if sender[1] and sender[1] ~= ARGV[1] and tonumber(sender[2] or '0') > now then
  return { OK, 'taken' }
end
local listed = redis.call('LRANGE', ALERTS, 0, tonumber(ARGV[3]) - 1)
if #listed == 0 then
  redis.call('HDEL', CFG, 'alerts_sender', 'alerts_sender_until')
  return { OK, 'done' }
end
redis.call('HSET', CFG, 'alerts_sender', ARGV[1], 'alerts_sender_until', now + tonumber(ARGV[2]))
local reply = { OK, 'sending' }
for _, entry in ipairs(listed) do reply[#reply + 1] = entry end
return reply
