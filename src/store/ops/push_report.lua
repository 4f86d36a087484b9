-- push_report: records the outcomes of delivery rounds of one queue, each only if its worker
-- still holds the claim. Rounds that end at about the same time are recorded together.
-- ARGV[1] wake channel, then seven values per round: message id, the claim's reservation id,
-- 'delete' (delivery is over), 'wait' (some subscribers are to be tried again, or their
-- acknowledgement is awaited) or 'hold' (record the state but keep the claim, for work after
-- the round: the error queue), push state as JSON, for 'wait': ms until the next round, for
-- 'delete': s to keep the push state readable (0 = not at all), for 'hold': ms to hold; the
-- acknowledgements the round started with ('' when none: they are merged into the state), and
-- the revision of the queue settings the round ran with: when they changed since (a subscriber
-- added or removed), 'delete' and 'hold' are not final: the message comes back at once for a
-- round on the new settings, and that round's status is CONFLICT.
-- The keys after the queue's own: per round, where a finished message and its push state are kept.
-- Returns {NO_QUEUE}, or {OK, status per round}: OK, or WRONG_RESERVATION when the claim ended
-- and another worker may hold the message now, or CONFLICT (above).
local now = now_ms()
local expiration = load_queue()
if not expiration then return { NO_QUEUE } end
local rounds = (#ARGV - 1) / 7
local ids = {}
for k = 1, rounds do ids[k] = ARGV[2 + (k - 1) * 7] end
local holders = call_many('HMGET', RID, ids)
local generation = queue_generation()
local revision = redis.call('HGET', CFG, 'rev')
local reply, delivered, waiting = { OK }, {}, 0
-- Claims ended by an earlier round of this batch: a later report on one finds it gone, as it
-- would have in a call of its own (a hand-back at shutdown racing the round's own report).
local ended = {}
for k = 1, rounds do
  local at = 2 + (k - 1) * 7
  local id, rid, action, state, number, acks_seen, round_revision =
    ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 6]
  local status = OK
  if holders[k] ~= rid or ended[id] then
    status = WRONG_RESERVATION
  else
    if (action == 'delete' or action == 'hold') and revision ~= round_revision then
      action, number, status = 'wait', '0', CONFLICT
    end
    if action ~= 'hold' then ended[id] = true end
    if action == 'delete' then
      delivered[#delivered + 1] = id
      local keep = tonumber(number)
      if keep > 0 then
        -- The message stays readable by id, with its push status, while its status is kept.
        local kept = KEYS[QUEUE_KEY_COUNT + k]
        local message = redis.call('HGET', BODY, id)
        local count = redis.call('HGET', RC, id) or '0'
        -- The queue as it is now: once it is cleared, or deleted and made again, this is not shown.
        redis.call('HSET', kept, 'state', state, 'body', message or '', 'reserved_count', count,
          'queue', generation)
        redis.call('EXPIRE', kept, keep)
      end
    elseif action == 'hold' then
      redis.call('HSET', PSTATE, id, state)
      redis.call('ZADD', CLAIMED, now + tonumber(number), id)
    else
      -- The round is over: the message waits without a holder until it is due again.
      redis.call('HDEL', RID, id)
      redis.call('HSET', PSTATE, id, state)
      local due = now + tonumber(number)
      local acks_field = id .. ':acks'
      local acks = redis.call('HGET', PSTATE, acks_field)
      if acks == acks_seen then
        redis.call('HDEL', PSTATE, acks_field)
      elseif acks then
        -- Acknowledged while the round ran: a worker merges that at once.
        due = now
      end
      redis.call('ZADD', CLAIMED, due, id)
      waiting = waiting + 1
    end
  end
  reply[#reply + 1] = status
end
remove_claimed(delivered)
-- Workers waiting on the queue learn when these messages are due again.
if waiting > 0 then wake(ARGV[1], now, waiting) end
return reply
