-- After a firing attempt: drop its in-flight lease, unless another job holds it now; a
-- delivered one marks the alert ``fired`` for this target (what resolve_only_if_fired asks
-- of a resolve), remembered for the ordering TTL. Returns 1.
local order_key = KEYS[1]
local job_id = ARGV[1]
local delivered = ARGV[2] == '1'
local ttl_ms = tonumber(ARGV[3] or '0')

if delivered then
  redis.call('HSET', order_key, 'fired', '1')
  redis.call('PEXPIRE', order_key, math.max(redis.call('PTTL', order_key), ttl_ms))
end

if redis.call('HGET', order_key, 'inflight') == job_id then
  redis.call('HDEL', order_key, 'inflight', 'inflight_until')
end
return 1
