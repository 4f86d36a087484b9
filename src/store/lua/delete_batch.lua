-- delete_batch: removes several messages, all or none: every entry is checked before any is
-- removed. ARGV: message id and reservation id ('' when none), per message.
-- Returns {status, index of the first entry that failed (1-based, 0 when OK)}. O(m log n).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE, 0 } end
local wheres = {}
for i = 1, #ARGV, 2 do
  local status, where = check_holder(ARGV[i], ARGV[i + 1], now, expiration)
  if status ~= OK then return { status, (i + 1) / 2 } end
  wheres[i] = where or false
end
for i = 1, #ARGV, 2 do
  remove_message(ARGV[i], wheres[i] or nil)
end
return { OK, 0 }
