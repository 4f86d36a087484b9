-- redrive_start: starts a redrive of this queue's waiting messages (see ops/redrive.rs), unless
-- one is running. ARGV[1] task id, ARGV[2] target queue, ARGV[3] most messages (0: all),
-- ARGV[4] messages per second (0: no limit), ARGV[5] unwrap error-queue envelopes (1|0).
-- Returns {OK}, {CONFLICT} when a redrive runs, or {NO_QUEUE}. O(1).
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
if redis.call('HGET', REDRIVE, 'state') == 'running' then return { CONFLICT } end
local now = now_ms()
redis.call('DEL', REDRIVE)
redis.call('HSET', REDRIVE, 'id', ARGV[1], 'to', ARGV[2], 'max', ARGV[3], 'rate', ARGV[4],
  'unwrap', ARGV[5], 'moved', 0, 'state', 'running', 'owner', '', 'lease', 0,
  'created_at', now, 'updated_at', now)
return { OK }
