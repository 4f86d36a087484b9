-- delete_queue: removes a queue with its messages and settings. ARGV[1] the resource that
-- deletes it ('' for a REST client). A queue managed by a resource is deleted only by that
-- resource. The keys after the queue's own are its delivery counts and history: every key goes. Returns {status} or {MANAGED, resource}.
-- UNLINK frees the memory in the background, so this is O(1) here.
if redis.call('EXISTS', CFG) == 0 then return { NO_QUEUE } end
local manager = redis.call('HGET', CFG, 'managed_by') or ''
if manager ~= '' and manager ~= ARGV[1] then return { MANAGED, manager } end
redis.call('UNLINK', unpack(KEYS))
return { OK }
