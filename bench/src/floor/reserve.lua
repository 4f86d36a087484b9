-- Moves up to n ids from the ready list to the reserved set (due at now + timeout), after
-- putting back those whose reservation lapsed; returns id, body, reservation id triples.
-- One variadic command per key, whatever n is.
-- KEYS: bodies, ready, reserved (zset of due times), holders (id -> reservation id).
-- ARGV: n, now ms, timeout ms, reservation id prefix.
local n, now, timeout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, n)
if #lapsed > 0 then
  redis.call('ZREM', KEYS[3], unpack(lapsed))
  redis.call('HDEL', KEYS[4], unpack(lapsed))
  redis.call('LPUSH', KEYS[2], unpack(lapsed))
end
local ids = redis.call('LPOP', KEYS[2], n)
if not ids then
  return {}
end
local bodies = redis.call('HMGET', KEYS[1], unpack(ids))
local due, holders, out = {}, {}, {}
for i, id in ipairs(ids) do
  local rid = ARGV[4] .. i
  due[#due + 1] = now + timeout
  due[#due + 1] = id
  holders[#holders + 1] = id
  holders[#holders + 1] = rid
  out[#out + 1] = id
  out[#out + 1] = bodies[i]
  out[#out + 1] = rid
end
redis.call('ZADD', KEYS[3], unpack(due))
redis.call('HSET', KEYS[4], unpack(holders))
return out
