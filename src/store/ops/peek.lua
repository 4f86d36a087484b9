-- peek: reads up to n ready messages from the front of a queue without reserving them.
-- ARGV[1] n. Returns {status, then id, body, reserved_count per message}.
-- O(n + batch): ids of deleted messages met on the way are skipped, at most `batch` of them.
local now = now_ms()
local expiration, _, queue_type = load_queue()
if not expiration then return { NO_QUEUE } end
maintain(now, expiration)
trim_head(now, expiration)
-- As reserve does: a pull queue shows what still waited for push after its own messages.
local sources = { READY }
if queue_type == 'pull' then
  maintain_push(now, expiration)
  sources[2] = PUSHQ
end
local n = tonumber(ARGV[1])
local reply = { OK }
local got, offset, source = 0, 0, 1
local budget = n + MAINTENANCE_BATCH
while got < n and budget > 0 and sources[source] do
  local ids = redis.call('LRANGE', sources[source], offset, offset + n - got - 1)
  if #ids == 0 then
    source, offset = source + 1, 0
  end
  offset = offset + #ids
  for _, id in ipairs(ids) do
    budget = budget - 1
    local body = not expired(id, now, expiration) and redis.call('HGET', BODY, id)
    if body then
      got = got + 1
      reply[#reply + 1] = id
      reply[#reply + 1] = body
      reply[#reply + 1] = tonumber(redis.call('HGET', RC, id) or '0')
    end
  end
end
return reply
