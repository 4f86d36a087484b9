-- redrive_start: starts a redrive of this queue's waiting messages (see ops/redrive.rs), unless
-- one is running, or a runner of the last one is still moving what it set aside (its lease
-- has not run out); what a cancelled one left set aside goes back to the front first.
-- ARGV[1] task id, ARGV[2] target queue, ARGV[3] most messages (0: all those waiting now),
-- ARGV[4] messages per second (0: no limit), ARGV[5] unwrap error-queue envelopes (1|0).
-- Returns {OK}, {CONFLICT} when a redrive runs, or {NO_QUEUE}. O(k) for k messages set aside.
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local now = now_ms()
local task = redis.call('HMGET', REDRIVE, 'state', 'lease')
if task[1] == 'running' then return { CONFLICT } end
local waiting = redis.call('LRANGE', REDRIVING, 0, -1)
if #waiting > 0 then
  if tonumber(task[2] or '0') > now then return { CONFLICT } end
  redis.call('DEL', REDRIVING)
  for i = #waiting, 1, -1 do redis.call('LPUSH', READY, waiting[i]) end
end
-- "All" means those waiting now: a queue that keeps receiving would never be done otherwise.
-- (An upper bound: READY may still list ids deleted since.)
local limit = tonumber(ARGV[3])
if limit == 0 then limit = redis.call('LLEN', READY) end
redis.call('DEL', REDRIVE)
redis.call('HSET', REDRIVE, 'id', ARGV[1], 'to', ARGV[2], 'max', ARGV[3], 'limit', limit,
  'rate', ARGV[4], 'unwrap', ARGV[5], 'moved', 0, 'state', 'running', 'owner', '', 'lease', 0,
  'created_at', now, 'updated_at', now)
return { OK }
