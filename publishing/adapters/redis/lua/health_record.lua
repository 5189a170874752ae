-- Count the events of one attempt on a target: per-event counters, the last success, the
-- last failure with its (already redacted) error, and breaker transitions in a capped list,
-- newest first. Both keys expire key_ttl_ms after the last event, so a target no longer
-- configured leaves nothing behind. Returns 1.
local health_key = KEYS[1]
local history_key = KEYS[2]
local at = ARGV[1]
local error_text = ARGV[2]
local history_max = tonumber(ARGV[3])
local key_ttl_ms = tonumber(ARGV[4])
local first_event = 5 -- event names from here to the end

for i = first_event, #ARGV do
  local event = ARGV[i]
  redis.call('HINCRBY', health_key, 'count:' .. event, 1)
  if event == 'success' then redis.call('HSET', health_key, 'last_success_at', at) end
  if event == 'failure' then
    redis.call('HSET', health_key, 'last_failure_at', at, 'last_error', error_text)
  end
  if event == 'tripped' or event == 'recovered' then
    redis.call('LPUSH', history_key, event .. ' ' .. at)
    redis.call('LTRIM', history_key, 0, history_max - 1)
  end
end
redis.call('PEXPIRE', health_key, key_ttl_ms)
if redis.call('EXISTS', history_key) == 1 then redis.call('PEXPIRE', history_key, key_ttl_ms) end
return 1
