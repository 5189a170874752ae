-- Claim a submission key for a job. A claim is 'P|job|since_ms' while its job is pending and
-- 'E|job' once enqueued; a pending claim older than the grace period belongs to a request
-- that died, and is taken over under the same job id (so a job that did reach the broker is
-- at worst delivered twice under one id, never lost).
-- Returns {status ('new'|'pending'|'duplicate'|'taken_over'), the claim's job id}.
local claim_key = KEYS[1]
local job_id = ARGV[1]
local window_ms = ARGV[2]
local grace_ms = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local held = redis.call('GET', claim_key)
if not held then
  redis.call('SET', claim_key, 'P|' .. job_id .. '|' .. now, 'PX', window_ms)
  return {'new', job_id}
end
local kind, holder, since = string.match(held, '^([PE])|([^|]+)|?(%d*)$')
if kind == 'P' and now - tonumber(since) >= grace_ms then
  redis.call('SET', claim_key, 'P|' .. holder .. '|' .. now, 'KEEPTTL')
  return {'taken_over', holder}
end
if kind == 'P' then return {'pending', holder} end
return {'duplicate', holder or held}
