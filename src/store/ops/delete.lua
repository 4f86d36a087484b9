-- delete: removes messages one by one, each on its own (the single deletes this call carries,
-- see src/store/coalesce.rs): a reserved message needs its current reservation id.
-- ARGV: message id and reservation id ('' when none), per delete.
-- Returns {OK, alert messages waiting, then a status per delete} or {NO_QUEUE}. O(log n) per delete.
local now = now_ms()
local expiration, _, _, _, _, alerts = load_queue()
if not expiration then return { NO_QUEUE } end
local reply = { OK, 0 }
for i = 1, #ARGV, 2 do
  local status, where = check_holder(ARGV[i], ARGV[i + 1], now, expiration)
  if status == OK then remove_message(ARGV[i], where) end
  reply[#reply + 1] = status
end
reply[2] = check_alerts(alerts, now)
return reply
