-- put: stores messages that come with their ids (moved in from another queue's DEAD by a
-- dead-letter move, or the messages of another queue's alerts) with their bodies and reserved
-- counts, at the back of the queue; their expiration starts now (ARRIVED). A message whose id
-- is already here, or given twice, is stored once; one whose move token was stored here in the
-- last ten minutes (MOVED) is not stored again, so a move repeated after its mover died
-- halfway stores nothing twice even when the first copy has been taken meanwhile. A message
-- still here but on its way out (in DEAD or REDRIVING: a move out that a dead process left
-- unfinished) is taken back instead: it stays, and that move, when finished, removes nothing.
-- Creates the queue with default settings when it does not exist.
-- ARGV[1] wake channel, ARGV[2] id for a new queue, ARGV[3] default message_timeout (s),
-- ARGV[4] default message_expiration (s), then five values per message: id, body,
-- reserved_count, push headers as JSON ('' when none), move token ('' when none).
-- Returns {OK, created (0|1), alert messages waiting}. O(m log t) for m messages and t tokens,
-- plus a scan of DEAD and REDRIVING per message already here.
local REMEMBER_MS = 600000
local now = now_ms()
local created = 0
local cfg = redis.call('HMGET', CFG, 'type', 'alerts')
local queue_type = cfg[1]
if not queue_type then
  create_queue(now, ARGV[2], ARGV[3], ARGV[4])
  queue_type, created = 'pull', 1
end
-- Like a post: to the push workers on a push queue.
local ready_list = queue_type == 'pull' and READY or PUSHQ
local ready, stored, counts, arrived, headers, tokens, seen = {}, {}, {}, {}, {}, {}, {}
for i = 5, #ARGV, 5 do
  local id, token = ARGV[i], ARGV[i + 4]
  local moved_before = token ~= '' and redis.call('ZSCORE', MOVED, token)
  if token ~= '' then
    tokens[#tokens + 1] = now
    tokens[#tokens + 1] = token
  end
  local here = not seen[id] and redis.call('HEXISTS', BODY, id) == 1
  if here then
    for _, leaving in ipairs({ DEAD, REDRIVING }) do
      if redis.call('LREM', leaving, 1, id) > 0 then
        -- Taken back: stored again below, as it comes now.
        remove_stored({ id })
        here = false
      end
    end
  end
  if not seen[id] and not here and not moved_before then
    seen[id] = true
    ready[#ready + 1] = id
    stored[#stored + 1] = id
    stored[#stored + 1] = ARGV[i + 1]
    if ARGV[i + 2] ~= '0' then
      counts[#counts + 1] = id
      counts[#counts + 1] = ARGV[i + 2]
    end
    arrived[#arrived + 1] = id
    arrived[#arrived + 1] = now
    if ARGV[i + 3] ~= '' then
      headers[#headers + 1] = id
      headers[#headers + 1] = ARGV[i + 3]
    end
  end
end
if #ready > 0 then
  call_many('HSET', BODY, stored)
  call_many('HSET', RC, counts)
  call_many('HSET', ARRIVED, arrived)
  call_many('HSET', HEADERS, headers)
  redis.call('RPUSH', ready_list, unpack(ready))
  redis.call('HINCRBY', CFG, 'total_messages', #ready)
  wake(ARGV[1], now, #ready)
end
if #tokens > 0 then
  -- Forgotten a few at a time, and all at once an idle period after the last move in.
  local old = redis.call('ZRANGEBYSCORE', MOVED, '-inf', now - REMEMBER_MS, 'LIMIT', 0, 1000)
  call_many('ZREM', MOVED, old)
  call_many('ZADD', MOVED, tokens)
  redis.call('PEXPIRE', MOVED, REMEMBER_MS)
end
return { OK, created, check_alerts(cfg[2], now) }
