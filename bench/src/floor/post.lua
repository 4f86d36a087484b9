-- Stores each body under a new id and appends the ids to the ready list; returns the first id.
-- KEYS: seq, bodies, ready. ARGV: the bodies.
local last = redis.call('INCRBY', KEYS[1], #ARGV)
local first = last - #ARGV + 1
local ids = {}
for i, body in ipairs(ARGV) do
  local id = tostring(first + i - 1)
  redis.call('HSET', KEYS[2], id, body)
  ids[i] = id
end
redis.call('RPUSH', KEYS[3], unpack(ids))
return first
