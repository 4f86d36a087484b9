-- delete: removes one message. A reserved message needs its current reservation id.
-- ARGV[1] message id, ARGV[2] reservation id ('' when none). Returns {status}. O(log n).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local status, where = check_holder(ARGV[1], ARGV[2], now, expiration)
if status == OK then remove_message(ARGV[1], where) end
return { status }
