-- delete_batch: removes several messages, all or none: every entry is checked before any is
-- removed. ARGV: message id and reservation id ('' when none), per message.
-- Returns {status, index of the first entry that failed (1-based, 0 when OK), alert messages
-- waiting}. O(m log n).
local now = now_ms()
local expiration, _, _, _, _, alerts = load_queue()
if not expiration then return { NO_QUEUE, 0 } end
local ids, rids = {}, {}
for i = 1, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  rids[#rids + 1] = ARGV[i + 1]
end
-- The usual batch holds reserved messages with their reservation ids: check those with two
-- calls for the whole batch, and anything else one by one.
local current = call_many('HMGET', RID, ids)
local deadlines = redis.call('ZMSCORE', RESERVED, unpack(ids))
local others = {}
for k, id in ipairs(ids) do
  local held = current[k] and deadlines[k] and not expired(id, now, expiration)
    and tonumber(deadlines[k]) > now and rids[k] ~= ''
  if held then
    if rids[k] ~= current[k] then return { WRONG_RESERVATION, k } end
  else
    local status = check_holder(id, rids[k], now, expiration)
    if status ~= OK then return { status, k } end
    others[#others + 1] = id
  end
end
remove_stored(ids)
call_many('ZREM', RESERVED, ids)
call_many('ZREM', DELAYED, others)
return { OK, 0, check_alerts(alerts, now) }
