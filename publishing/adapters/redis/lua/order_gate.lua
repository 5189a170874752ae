-- Before an attempt on an alert's target. A firing job learns whether a resolve noted at or
-- after its own note (both on Redis's clock) superseded it, and otherwise takes the
-- in-flight lease; a resolve learns whether a firing attempt holds the lease (it must wait
-- so the two never cross). A firing job never noted (queued before notes existed) is
-- compared by the submission time it carries. With require_fired set (the target's
-- resolve_only_if_fired), a resolve of an alert no firing of which was delivered here
-- (``fired``, set by order_leave) is superseded.
-- Returns {'go'|'superseded'|'wait', wait_ms}.
local order_key = KEYS[1]
local firing = ARGV[1] == '1'
local job_id = ARGV[2]
local submitted_at = ARGV[3]
local lease_ms = tonumber(ARGV[4])
local require_fired = ARGV[5] == '1'

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local resolved_at = tonumber(redis.call('HGET', order_key, 'resolved_at') or '-1')
if firing then
  local noted = tonumber(redis.call('HGET', order_key, 'firing:' .. job_id) or submitted_at)
  if resolved_at >= noted then
    redis.call('HDEL', order_key, 'firing:' .. job_id)
    return {'superseded', 0}
  end
  redis.call('HSET', order_key, 'inflight', job_id, 'inflight_until', now + lease_ms)
  -- The hash must outlive the lease, and keep any longer TTL a noted resolve gave it.
  redis.call('PEXPIRE', order_key, math.max(redis.call('PTTL', order_key), lease_ms * 2))
  return {'go', 0}
end
local holder = redis.call('HGET', order_key, 'inflight')
local until_ms = tonumber(redis.call('HGET', order_key, 'inflight_until') or '0')
if holder and until_ms > now then return {'wait', until_ms - now} end
if require_fired and not redis.call('HGET', order_key, 'fired') then return {'superseded', 0} end
return {'go', 0}
