-- push_claim: a push worker takes up to n messages of a push queue for one delivery round,
-- each under a claim (a reservation) that lasts `claim` ms, so no other worker takes it
-- meanwhile; a worker that dies loses its claims when they end, and the messages come back.
-- ARGV[1] n, ARGV[2] claim (ms), ARGV[3] waiter id ('' = do not wait), ARGV[4] wait (ms),
-- ARGV[5..] one new reservation id per message.
-- Returns {status, next_due, then id, body, push headers ('' when none), push state ('' when
-- none yet), reservation id, acknowledgements recorded since the last round ('' when none) per
-- message}; status NO_QUEUE also when the queue is not a push queue. next_due as in reserve.
-- Atomic; O(n log n).
local now = now_ms()
local expiration, _, queue_type = load_queue()
if not expiration or queue_type == 'pull' then return { NO_QUEUE } end
for _ = 1, 4 do
  if not maintain_push(now, expiration) then break end
end
local n = tonumber(ARGV[1])
local until_ms = now + tonumber(ARGV[2])
local reply = { OK, -1 }
local got = 0
while got < n do
  local popped = redis.call('LPOP', PUSHQ, n - got)
  if not popped then break end
  local ids = {}
  for _, id in ipairs(popped) do
    if expired(id, now, expiration) then remove_message(id) else ids[#ids + 1] = id end
  end
  -- One call per field for the whole batch.
  local ack_fields = {}
  for k, id in ipairs(ids) do ack_fields[k] = id .. ':acks' end
  local bodies = call_many('HMGET', BODY, ids)
  local headers = call_many('HMGET', HEADERS, ids)
  local states = call_many('HMGET', PSTATE, ids)
  local acks = call_many('HMGET', PSTATE, ack_fields)
  local claims, holders = {}, {}
  for k, id in ipairs(ids) do
    -- No body: the message was deleted while its id waited in PUSHQ.
    if bodies[k] then
      got = got + 1
      local rid = ARGV[4 + got]
      claims[#claims + 1] = until_ms
      claims[#claims + 1] = id
      holders[#holders + 1] = id
      holders[#holders + 1] = rid
      reply[#reply + 1] = id
      reply[#reply + 1] = bodies[k]
      reply[#reply + 1] = headers[k] or ''
      reply[#reply + 1] = states[k] or ''
      reply[#reply + 1] = rid
      reply[#reply + 1] = acks[k] or ''
    end
  end
  call_many('ZADD', CLAIMED, claims)
  call_many('HSET', RID, holders)
end
if got == 0 and ARGV[3] ~= '' then
  add_waiter(now + tonumber(ARGV[4]))
  reply[2] = next_due(now, { CLAIMED, PUSH_DELAYED })
end
return reply
