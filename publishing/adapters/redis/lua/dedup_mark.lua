-- The job of a pending claim is on the broker: the claim becomes 'E|job', keeping its TTL.
-- A claim held for another job is left alone. Returns 1.
local claim_key = KEYS[1]
local job_id = ARGV[1]

local pending = 'P|' .. job_id .. '|'
local held = redis.call('GET', claim_key)
if held and string.sub(held, 1, #pending) == pending then
  redis.call('SET', claim_key, 'E|' .. job_id, 'KEEPTTL')
end
return 1
