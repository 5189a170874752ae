-- A job of this alert and target was submitted, noted on Redis's clock (never an API host's):
-- a resolve moves the alert's resolved mark to now; a firing job keeps its first note
-- (``firing:<job id>``). The hash is remembered for the ordering TTL. Returns 1.
local order_key = KEYS[1]
local firing = ARGV[1] == '1'
local job_id = ARGV[2]
local ttl_ms = ARGV[3]

local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
if firing then
  redis.call('HSETNX', order_key, 'firing:' .. job_id, now)
else
  local current = tonumber(redis.call('HGET', order_key, 'resolved_at') or '-1')
  if tonumber(now) > current then redis.call('HSET', order_key, 'resolved_at', now) end
end
redis.call('PEXPIRE', order_key, math.max(redis.call('PTTL', order_key), tonumber(ttl_ms)))
return 1
