-- Drop jobs whose hashes have expired from the recency index and from every index set (a
-- page read found them missing). A job whose hash exists is kept.
-- Returns how many jobs were dropped.
local recency_key = KEYS[1]
local registry_key = KEYS[2]
local job_key_prefix = ARGV[1]
local first_id = 2 -- job ids from here to the end

local indices = nil
local dropped = 0
for i = first_id, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', job_key_prefix .. id) == 0 then
    indices = indices or redis.call('SMEMBERS', registry_key)
    for _, index in ipairs(indices) do redis.call('ZREM', index, id) end
    redis.call('ZREM', recency_key, id)
    dropped = dropped + 1
  end
end
return dropped
