-- push_gate_settle: what the deliveries push_gate_admit let through came to. Frees their
-- leases, records a Retry-After pause, and moves each subscriber's circuit breaker: a
-- subscriber that took a message is closed; one that failed `pause_after` tries in a row opens
-- (paused for the probe interval); a failed probe keeps it open twice as long (at most an hour).
-- KEYS as push_gate_admit. ARGV[1] n, then per subscriber: key, lease id ('' = none), outcome
-- ('took', 'failed' or 'neither'), pause_after (0 = no breaker), probe interval (ms), probed
-- (1 when the delivery was the probe), Retry-After (ms, 0 = none).
-- Returns {OK, then per subscriber: change ('' none, 'opened', 'reopened', 'closed'), open,
-- ms it stays paused (0 = not)}. Atomic; O(n log m).
local now = now_ms()
local gate = KEYS[QUEUE_KEY_COUNT + 1]
local n = tonumber(ARGV[1])
local MAX_PAUSE_MS = 3600000
local reply = { OK }
for i = 1, n do
  local a = 1 + (i - 1) * 7
  local sub, lease, outcome = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local pause_after, probe_ms = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local probed, retry_after = ARGV[a + 6] == '1', tonumber(ARGV[a + 7])
  local flight = KEYS[QUEUE_KEY_COUNT + 1 + i]
  if lease ~= '' then redis.call('ZREM', flight, lease) end
  local f_until, f_open, f_fails, f_probe = sub .. ':until', sub .. ':open', sub .. ':fails',
    sub .. ':probe'
  local state = redis.call('HMGET', gate, f_until, f_open)
  local until_ms, open = tonumber(state[1]) or 0, tonumber(state[2])
  local change = ''
  if retry_after > 0 and now + retry_after > until_ms then
    until_ms = now + retry_after
    redis.call('HSET', gate, f_until, until_ms)
  end
  if outcome == 'took' then
    redis.call('HDEL', gate, f_fails, f_open, f_probe)
    if open then
      redis.call('HDEL', gate, f_until)
      open, until_ms, change = nil, 0, 'closed'
    end
  elseif outcome == 'failed' and pause_after > 0 then
    if open then
      -- Only the probe's failure counts: deliveries begun before the pause end as they may.
      if probed then
        until_ms = now + math.min(probe_ms * 2 ^ open, MAX_PAUSE_MS)
        open = open + 1
        redis.call('HSET', gate, f_open, open, f_until, until_ms)
        redis.call('HDEL', gate, f_probe)
        change = 'reopened'
      end
    elseif redis.call('HINCRBY', gate, f_fails, 1) >= pause_after then
      open, until_ms = 1, math.max(until_ms, now + probe_ms)
      redis.call('HSET', gate, f_open, open, f_until, until_ms)
      redis.call('HDEL', gate, f_fails, f_probe)
      change = 'opened'
    end
  elseif outcome == 'neither' and probed then
    -- The probe got a Retry-After: the next delivery probes again.
    redis.call('HDEL', gate, f_probe)
  end
  reply[#reply + 1] = change
  reply[#reply + 1] = open and 1 or 0
  reply[#reply + 1] = math.max(0, until_ms - now)
end
redis.call('PEXPIRE', gate, 86400000 * 2)
return reply
