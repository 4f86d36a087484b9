-- delete_queue: removes a queue with its messages and settings. No ARGV. Returns {status}.
-- UNLINK frees the memory in the background, so this is O(1) here.
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
redis.call('UNLINK', CFG, BODY, RC, RID, READY, DELAYED, RESERVED, WAITERS, HEADERS, PUSHQ,
  PUSH_DELAYED, CLAIMED, PSTATE)
return { OK }
