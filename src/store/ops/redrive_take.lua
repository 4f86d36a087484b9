-- redrive_take: the next messages of a running redrive, for the process that runs it (holding
-- its lease), as they are stored here. Sets aside ready messages from the front, up to ARGV[3]
-- in flight and the redrive's max, in REDRIVING (first those a run cut short left there): they
-- stay stored, handed out to nobody, until redrive_done. A redrive whose lease another process
-- holds is not taken; one cancelled hands what it set aside back to the front.
-- ARGV[1] runner id, ARGV[2] lease (ms), ARGV[3] most messages in flight.
-- Returns {OK, state ('running', 'done', 'cancelled', 'taken' by another runner, '' none),
-- target, unwrap (1|0), then per message: id, body, push headers ('' when none), move token
-- (see move_token)}, or {NO_QUEUE}. O(k log n) for k messages.
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local task = redis.call('HMGET', REDRIVE, 'state', 'owner', 'lease', 'limit', 'moved', 'to', 'unwrap')
local state = task[1] or ''
-- Another runner holds the lease: it may be moving what is set aside.
if task[2] ~= ARGV[1] and tonumber(task[3] or '0') > now then return { OK, 'taken', '', 0 } end
if state ~= 'running' then
  local waiting = redis.call('LRANGE', REDRIVING, 0, -1)
  if #waiting > 0 then
    redis.call('DEL', REDRIVING)
    for i = #waiting, 1, -1 do redis.call('LPUSH', READY, waiting[i]) end
  end
  return { OK, state, '', 0 }
end
redis.call('HSET', REDRIVE, 'owner', ARGV[1], 'lease', now + tonumber(ARGV[2]), 'updated_at', now)
maintain(now, expiration)
local want = tonumber(ARGV[3]) - redis.call('LLEN', REDRIVING)
-- (No limit in a task written before limits were.)
local limit = tonumber(task[4]) or math.huge
want = math.min(want, limit - tonumber(task[5]) - redis.call('LLEN', REDRIVING))
while want > 0 do
  local popped = redis.call('LPOP', READY, want)
  if not popped then break end
  for _, id in ipairs(popped) do
    if is_live(id, now, expiration) then
      redis.call('RPUSH', REDRIVING, id)
      want = want - 1
    end
  end
end
local ids = redis.call('LRANGE', REDRIVING, 0, -1)
if #ids == 0 then
  redis.call('HSET', REDRIVE, 'state', 'done', 'updated_at', now)
  return { OK, 'done', '', 0 }
end
local bodies = call_many('HMGET', BODY, ids)
local headers = call_many('HMGET', HEADERS, ids)
local arrived = call_many('HMGET', ARRIVED, ids)
local reply = { OK, 'running', task[6], task[7] }
for k, id in ipairs(ids) do
  if bodies[k] then
    reply[#reply + 1] = id
    reply[#reply + 1] = bodies[k]
    reply[#reply + 1] = headers[k] or ''
    reply[#reply + 1] = move_token(id, arrived[k])
  else
    -- Deleted (or expired) since it was set aside.
    redis.call('LREM', REDRIVING, 1, id)
  end
end
return reply
