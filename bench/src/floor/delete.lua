-- Deletes each reserved message whose reservation id matches; returns 1 or 0 per message.
-- One variadic command per key for the messages deleted.
-- KEYS: bodies, reserved, holders. ARGV: id, reservation id pairs.
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local holders = redis.call('HMGET', KEYS[3], unpack(ids))
local out, held = {}, {}
for k, id in ipairs(ids) do
  if holders[k] == ARGV[2 * k] then
    held[#held + 1] = id
    out[k] = 1
  else
    out[k] = 0
  end
end
if #held > 0 then
  redis.call('HDEL', KEYS[3], unpack(held))
  redis.call('ZREM', KEYS[2], unpack(held))
  redis.call('HDEL', KEYS[1], unpack(held))
end
return out
