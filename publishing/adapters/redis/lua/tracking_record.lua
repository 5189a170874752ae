-- Record (create or replace) one job: its hash, expiring after the tracker's TTL, indexed by
-- recency and in one sorted set per state, per target and per priority (score: submitted
-- at). Then evict the oldest jobs beyond capacity and trim index entries older than the TTL.
-- ``updated_at`` is set on Redis's clock (the reconciler's grace period is measured on it).
-- Returns how many jobs were evicted for capacity.
local job_key = KEYS[1]
local recency_key = KEYS[2]
local registry_key = KEYS[3] -- the set of every index key, for cleanups that must visit all
local ttl_ms = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local score = tonumber(ARGV[3])
local job_id = ARGV[4]
local job_key_prefix = ARGV[5]
local index_prefix = ARGV[6]
local starts_key_prefix = ARGV[7]
local first_field = 8 -- field, value, field, value, ... from here to the end

local indexed = {'state', 'target', 'priority'}

-- An existing hash names the indices its job is in; an expired one does not, so then every
-- index is visited (rare: the TTL trim below usually got there first).
local function unindex(id, search_all)
  local values = redis.call('HMGET', job_key_prefix .. id, unpack(indexed))
  if values[1] then
    for i, field in ipairs(indexed) do
      if values[i] then redis.call('ZREM', index_prefix .. field .. ':' .. values[i], id) end
    end
  elseif search_all then
    for _, index in ipairs(redis.call('SMEMBERS', registry_key)) do redis.call('ZREM', index, id) end
  end
  redis.call('ZREM', recency_key, id)
end

unindex(job_id, false)
redis.call('DEL', job_key)
local fields = {}
for i = first_field, #ARGV, 2 do
  redis.call('HSET', job_key, ARGV[i], ARGV[i + 1])
  fields[ARGV[i]] = ARGV[i + 1]
end
local t = redis.call('TIME')
redis.call('HSET', job_key, 'updated_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
redis.call('PEXPIRE', job_key, ttl_ms)
redis.call('ZADD', recency_key, score, job_id)
for _, field in ipairs(indexed) do
  if fields[field] then
    local index = index_prefix .. field .. ':' .. fields[field]
    redis.call('ZADD', index, score, job_id)
    redis.call('SADD', registry_key, index)
  end
end

local over = redis.call('ZCARD', recency_key) - capacity
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', recency_key, 0, over - 1)) do
    unindex(id, true)
    redis.call('DEL', job_key_prefix .. id, starts_key_prefix .. id)
  end
end

-- Checking the oldest entry first keeps the common case (nothing to trim) to one read.
local expired = score - ttl_ms / 1000
local oldest = redis.call('ZRANGE', recency_key, 0, 0, 'WITHSCORES')
if oldest[2] and tonumber(oldest[2]) < expired then
  redis.call('ZREMRANGEBYSCORE', recency_key, '-inf', '(' .. expired)
  for _, index in ipairs(redis.call('SMEMBERS', registry_key)) do
    redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. expired)
  end
end
return math.max(over, 0)
