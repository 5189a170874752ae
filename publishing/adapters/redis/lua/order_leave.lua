-- After a firing attempt: drop its in-flight lease, unless another job holds it now.
-- Returns 1.
local order_key = KEYS[1]
local job_id = ARGV[1]

if redis.call('HGET', order_key, 'inflight') == job_id then
  redis.call('HDEL', order_key, 'inflight', 'inflight_until')
end
return 1
