-- Admission of one attempt to a target: a pause first, then the breaker (moving an open
-- breaker whose open time is over to half-open), then the GCRA rate limiter. Nothing is
-- taken (a probe slot, a rate token) unless the attempt is admitted.
-- Returns {admitted (0|1), detail, wait_ms, state, down_for_ms, half_opened (0|1)}: detail is
-- the probe id of an admitted half-open probe, 'clean' for a closed breaker with no failure
-- counted, '' for a closed one with failures, or the defer reason ('paused', 'open',
-- 'half_open', 'rate_limited'); wait_ms is how long a deferred attempt should wait;
-- half_opened is 1 for the one call that moved an open breaker to half-open.
-- The breaker's hash expires key_ttl_ms after its last use, so a target no longer
-- configured leaves nothing behind.
local breaker_key = KEYS[1]
local probes_key = KEYS[2]
local pause_key = KEYS[3]
local rate_key = KEYS[4]
local open_timeout_ms = tonumber(ARGV[1])
local max_probes = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local probe_id = ARGV[4]
local half_open_retry_ms = tonumber(ARGV[5])
local interval_ms = tonumber(ARGV[6]) -- 0: no rate limit
local tolerance_ms = tonumber(ARGV[7])
local key_ttl_ms = tonumber(ARGV[8])

-- Redis's own clock, so no host's clock skew matters.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = redis.call('HGET', breaker_key, 'state') or 'closed'
if redis.call('EXISTS', breaker_key) == 1 then
  redis.call('PEXPIRE', breaker_key, key_ttl_ms)
end
local half_opened = 0
local down_for = now - tonumber(redis.call('HGET', breaker_key, 'down_since_ms') or now)

local paused = redis.call('PTTL', pause_key)
if paused > 0 then return {0, 'paused', paused, state, down_for, 0} end

if state == 'open' then
  local reopen = tonumber(redis.call('HGET', breaker_key, 'opened_at_ms')) + open_timeout_ms
  if now < reopen then return {0, 'open', reopen - now, state, down_for, 0} end
  state = 'half_open'
  half_opened = 1
  redis.call('HSET', breaker_key, 'state', state, 'successes', 0)
  redis.call('DEL', probes_key)
end

if state == 'half_open' then
  redis.call('ZREMRANGEBYSCORE', probes_key, '-inf', now)
  if redis.call('ZCARD', probes_key) >= max_probes then
    -- Ask again when the first lease runs out, if that is sooner than the usual retry.
    local first = redis.call('ZRANGE', probes_key, 0, 0, 'WITHSCORES')
    return {0, 'half_open', math.min(half_open_retry_ms, tonumber(first[2]) - now), state, down_for, half_opened}
  end
end

if interval_ms > 0 then
  local tat = math.max(tonumber(redis.call('GET', rate_key) or now), now)
  local early = tat - now - tolerance_ms
  if early > 0 then return {0, 'rate_limited', early, state, down_for, half_opened} end
  -- The key outlives the point where its arrival time would fall behind the clock anyway.
  redis.call('SET', rate_key, tat + interval_ms, 'PX', math.ceil(tat + interval_ms - now + tolerance_ms + 1000))
end

if state == 'closed' then
  local clean = tonumber(redis.call('HGET', breaker_key, 'failures') or '0') == 0 and 'clean' or ''
  return {1, clean, 0, state, 0, 0}
end

redis.call('ZADD', probes_key, now + lease_ms, probe_id)
redis.call('PEXPIRE', probes_key, lease_ms * 2)
return {1, probe_id, 0, state, down_for, half_opened}
