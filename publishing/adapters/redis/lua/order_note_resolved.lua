-- A resolve for this alert and target was submitted: keep the latest submission time, and
-- remember it for the ordering TTL. Returns 1.
local order_key = KEYS[1]
local submitted_at_text = ARGV[1] -- stored as sent, so it reads back exactly
local ttl_ms = ARGV[2]

local current = tonumber(redis.call('HGET', order_key, 'resolved_at') or '-1')
if tonumber(submitted_at_text) > current then
  redis.call('HSET', order_key, 'resolved_at', submitted_at_text)
end
redis.call('PEXPIRE', order_key, ttl_ms)
return 1
