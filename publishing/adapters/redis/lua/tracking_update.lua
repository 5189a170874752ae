-- Change some fields of a tracked job; a job that is not tracked (never recorded, evicted or
-- expired) is left alone. A new state, target or priority moves the job between the index
-- sets in the same step, so counts never see it in two states or none.
-- ``updated_at`` is set on Redis's clock (the reconciler's grace period is measured on it).
-- Returns 1 when the job was tracked, else 0.
local job_key = KEYS[1]
local recency_key = KEYS[2]
local registry_key = KEYS[3]
local job_id = ARGV[1]
local index_prefix = ARGV[2]
local first_field = 3 -- field, value, ... from here to the end; an empty value deletes

if redis.call('EXISTS', job_key) == 0 then return 0 end
local indexed = {state = true, target = true, priority = true}
-- A job trimmed from the recency index is on its way out: it joins no index again.
local score = redis.call('ZSCORE', recency_key, job_id)
for i = first_field, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if indexed[field] then
    local old = redis.call('HGET', job_key, field)
    if old ~= value then
      if old then redis.call('ZREM', index_prefix .. field .. ':' .. old, job_id) end
      if score and value ~= '' then
        local index = index_prefix .. field .. ':' .. value
        redis.call('ZADD', index, score, job_id)
        redis.call('SADD', registry_key, index)
      end
    end
  end
  if value == '' then
    redis.call('HDEL', job_key, field)
  else
    redis.call('HSET', job_key, field, value)
  end
end
local t = redis.call('TIME')
redis.call('HSET', job_key, 'updated_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
return 1
