-- An attempt starts: count how often this attempt has started (more than once means its
-- message was redelivered), and mark the job processing when it is tracked. The count lives
-- in its own small key with the tracker's TTL, so an untracked job gets no tracking entry.
-- Returns the number of starts of this attempt.
local job_key = KEYS[1]
local starts_key = KEYS[2]
local recency_key = KEYS[3]
local registry_key = KEYS[4]
local started_at = ARGV[1]
local attempt_key = ARGV[2]
local ttl_ms = tonumber(ARGV[3])
local job_id = ARGV[4]
local index_prefix = ARGV[5]

local starts = redis.call('HINCRBY', starts_key, attempt_key, 1)
redis.call('PEXPIRE', starts_key, ttl_ms)
if redis.call('EXISTS', job_key) == 1 then
  local old = redis.call('HGET', job_key, 'state')
  if old ~= 'processing' then
    if old then redis.call('ZREM', index_prefix .. 'state:' .. old, job_id) end
    local score = redis.call('ZSCORE', recency_key, job_id)
    if score then
      redis.call('ZADD', index_prefix .. 'state:processing', score, job_id)
      redis.call('SADD', registry_key, index_prefix .. 'state:processing')
    end
  end
  local t = redis.call('TIME')
  local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  redis.call('HSET', job_key, 'state', 'processing', 'started_at', started_at, 'updated_at', now)
end
return starts
