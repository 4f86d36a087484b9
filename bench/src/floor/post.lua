-- Stores each body under a new id and appends the ids to the ready list; returns the first id.
-- One variadic command per key, whatever the number of messages.
-- KEYS: seq, bodies, ready. ARGV: the bodies.
local last = redis.call('INCRBY', KEYS[1], #ARGV)
local first = last - #ARGV + 1
local ids, fields = {}, {}
for i, body in ipairs(ARGV) do
  local id = tostring(first + i - 1)
  ids[i] = id
  fields[#fields + 1] = id
  fields[#fields + 1] = body
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('RPUSH', KEYS[3], unpack(ids))
return first
