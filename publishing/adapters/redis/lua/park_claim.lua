-- Claim up to ``limit`` jobs for a mover to send: first those whose claim's lease ended
-- unconfirmed (their mover died), then due parked jobs, queue by queue (high, medium, low),
-- each in due order. A claimed job moves, with its message, to the
-- in-flight set scored by the end of its lease; ``park_confirm`` forgets it once it is sent.
-- Returns {lease, job_id, message, job_id, message, ...}; lease names this claim.
local moving_key = KEYS[1]
local moving_messages_key = KEYS[2]
local messages_key = KEYS[3]
local high_key = KEYS[4]
local medium_key = KEYS[5]
local low_key = KEYS[6]
local limit = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = string.format('%d', now + lease_ms)
local out = {lease}
local claimed = 0

local expired = redis.call('ZRANGEBYSCORE', moving_key, '-inf', now, 'LIMIT', 0, limit)
for _, job_id in ipairs(expired) do
  local message = redis.call('HGET', moving_messages_key, job_id)
  if message then
    redis.call('ZADD', moving_key, lease, job_id)
    out[#out + 1] = job_id
    out[#out + 1] = message
    claimed = claimed + 1
  else
    redis.call('ZREM', moving_key, job_id)
  end
end

for _, parked_key in ipairs({high_key, medium_key, low_key}) do
  if claimed >= limit then break end
  local due = redis.call('ZRANGEBYSCORE', parked_key, '-inf', now, 'LIMIT', 0, limit - claimed)
  for _, job_id in ipairs(due) do
    local message = redis.call('HGET', messages_key, job_id)
    redis.call('ZREM', parked_key, job_id)
    redis.call('HDEL', messages_key, job_id)
    if message then
      redis.call('ZADD', moving_key, lease, job_id)
      redis.call('HSET', moving_messages_key, job_id, message)
      out[#out + 1] = job_id
      out[#out + 1] = message
      claimed = claimed + 1
    end
  end
end
return out
