-- push_gate_admit: may a round deliver to these subscribers now? Their flow control and circuit
-- breaker are shared by every push worker of every process. KEYS[QUEUE_KEY_COUNT + 1] the gate
-- hash (fields '<subscriber>:<what>', see push_gate.rs), then one sorted set per subscriber of
-- its deliveries in flight (lease -> ms it ends).
-- ARGV[1] n, then per subscriber: key, max_per_second (0 = none), max_concurrency (0 = none),
-- pause_after_failures (0 = no breaker), lease id, lease (ms), its booked slot (ms, 0 = none),
-- probe interval (ms).
-- Returns {OK, then per subscriber: verdict, wait (ms), slot, open}: verdict 'go', 'probe' (go:
-- the one delivery that probes a paused subscriber), or a reason to wait: 'pause' (a
-- Retry-After), 'open' (its breaker), 'concurrency' or 'rate' (slot = the one booked for this
-- message, ms since the epoch); open = 1 while its breaker is open. Verdicts are named in
-- push_gate.rs. Atomic; O(n log m) for m deliveries in flight.
local now = now_ms()
local gate = KEYS[QUEUE_KEY_COUNT + 1]
local n = tonumber(ARGV[1])
-- A booked slot used up to this late still counts; later, another is booked.
local LATE_MS = 250
local reply = { OK }
local wrote = false
for i = 1, n do
  local a = 1 + (i - 1) * 8
  local sub = ARGV[a + 1]
  local rate, most, pause_after = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local lease, lease_ms, slot = ARGV[a + 5], tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
  local probe_ms = tonumber(ARGV[a + 8])
  local flight = KEYS[QUEUE_KEY_COUNT + 1 + i]
  local state = redis.call('HMGET', gate, sub .. ':until', sub .. ':open', sub .. ':probe',
    sub .. ':tat', sub .. ':rate')
  local until_ms, open = tonumber(state[1]) or 0, state[2]
  local probing, tat = tonumber(state[3]) or 0, tonumber(state[4]) or 0
  if open and pause_after == 0 then
    -- Its breaker was removed: no longer paused.
    redis.call('HDEL', gate, sub .. ':open', sub .. ':probe', sub .. ':fails', sub .. ':until')
    open, until_ms, wrote = nil, 0, true
  end
  if rate > 0 and state[5] ~= ARGV[a + 2] then
    -- A new rate starts now: slots booked at the old one no longer count.
    redis.call('HSET', gate, sub .. ':rate', ARGV[a + 2])
    tat, slot, wrote = 0, 0, true
  end
  local verdict, wait = 'go', 0
  if until_ms > now then
    verdict, wait = (open and 'open' or 'pause'), until_ms - now
  elseif open then
    if probing > now then
      -- Another delivery probes it: look again after a probe interval at most.
      verdict, wait = 'open', math.min(probing - now, probe_ms)
    else
      verdict = 'probe'
    end
  end
  if (verdict == 'go' or verdict == 'probe') and most > 0 then
    redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
    if redis.call('ZCARD', flight) >= most then verdict = 'concurrency' end
  end
  if (verdict == 'go' or verdict == 'probe') and rate > 0 then
    if slot > now then
      verdict, wait = 'rate', slot - now
    elseif slot == 0 or now - slot > LATE_MS then
      -- Book the next free slot (GCRA): now if free, else later, one interval apart.
      local free = math.max(tat, now)
      redis.call('HSET', gate, sub .. ':tat', string.format('%.3f', free + 1000 / rate))
      wrote = true
      if free > now then verdict, wait, slot = 'rate', free - now, math.ceil(free) end
    end
  end
  if verdict == 'go' or verdict == 'probe' then
    if most > 0 then
      redis.call('ZADD', flight, now + lease_ms, lease)
      -- Not shorter than a lease already there.
      redis.call('PEXPIRE', flight, lease_ms, 'GT')
      if redis.call('PTTL', flight) < 0 then redis.call('PEXPIRE', flight, lease_ms) end
    end
    if verdict == 'probe' then
      redis.call('HSET', gate, sub .. ':probe', now + lease_ms)
      wrote = true
    end
  end
  reply[#reply + 1] = verdict
  reply[#reply + 1] = math.ceil(wait)
  reply[#reply + 1] = verdict == 'rate' and slot or 0
  reply[#reply + 1] = open and 1 or 0
end
-- The gate outlives any wait it holds (a day at most), then goes.
if wrote then redis.call('PEXPIRE', gate, 86400000 * 2) end
return reply
