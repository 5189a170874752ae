-- A failed attempt: it counts towards the failure threshold of a closed breaker, and a
-- failed probe (one that still holds its slot) reopens a half-open breaker. Failures
-- reported while open change nothing, so they cannot extend the open time.
-- Returns 1 when this failure opened the breaker, else 0.
local breaker_key = KEYS[1]
local probes_key = KEYS[2]
local failure_threshold = tonumber(ARGV[1])
local probe_id = ARGV[2] -- '' when the attempt held no probe slot
local key_ttl_ms = tonumber(ARGV[3]) -- the hash expires this long after its last use

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function open_breaker()
  redis.call('HSET', breaker_key, 'state', 'open', 'opened_at_ms', now, 'successes', 0, 'failures', 0)
  -- Down since the first trip: a failed probe does not restart the outage.
  redis.call('HSETNX', breaker_key, 'down_since_ms', now)
  redis.call('HINCRBY', breaker_key, 'trips', 1)
  redis.call('DEL', probes_key)
  redis.call('PEXPIRE', breaker_key, key_ttl_ms)
end

local state = redis.call('HGET', breaker_key, 'state') or 'closed'
if redis.call('EXISTS', breaker_key) == 1 then redis.call('PEXPIRE', breaker_key, key_ttl_ms) end
if state == 'closed' then
  local failures = redis.call('HINCRBY', breaker_key, 'failures', 1)
  redis.call('PEXPIRE', breaker_key, key_ttl_ms)
  if failures >= failure_threshold then
    open_breaker()
    return 1
  end
  return 0
end
if state == 'half_open' and probe_id ~= '' and redis.call('ZREM', probes_key, probe_id) == 1 then
  open_breaker()
  return 1
end
return 0
