-- A successful attempt: in a closed breaker it clears the failure count; in a half-open one,
-- a success of a probe that still holds its slot counts towards closing it.
-- Returns 2 when this success closed the breaker, else 0.
local breaker_key = KEYS[1]
local probes_key = KEYS[2]
local success_threshold = tonumber(ARGV[1])
local probe_id = ARGV[2] -- '' when the attempt held no probe slot
local key_ttl_ms = tonumber(ARGV[3]) -- the hash expires this long after its last use

local state = redis.call('HGET', breaker_key, 'state') or 'closed'
if redis.call('EXISTS', breaker_key) == 1 then redis.call('PEXPIRE', breaker_key, key_ttl_ms) end
if state == 'closed' then
  if tonumber(redis.call('HGET', breaker_key, 'failures') or '0') > 0 then
    redis.call('HSET', breaker_key, 'failures', 0)
  end
  return 0
end
if state == 'half_open' and probe_id ~= '' and redis.call('ZREM', probes_key, probe_id) == 1 then
  local successes = redis.call('HINCRBY', breaker_key, 'successes', 1)
  if successes >= success_threshold then
    redis.call('HSET', breaker_key, 'state', 'closed', 'failures', 0, 'successes', 0)
    redis.call('HDEL', breaker_key, 'opened_at_ms', 'down_since_ms')
    redis.call('HINCRBY', breaker_key, 'recoveries', 1)
    redis.call('DEL', probes_key)
    return 2
  end
end
return 0
