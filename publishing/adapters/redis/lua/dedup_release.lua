-- Drop a pending claim whose job could not be enqueued, if it is still held for that job.
-- Returns 1 when the claim was dropped, else 0.
local claim_key = KEYS[1]
local job_id = ARGV[1]

local pending = 'P|' .. job_id .. '|'
local held = redis.call('GET', claim_key)
if held and string.sub(held, 1, #pending) == pending then
  return redis.call('DEL', claim_key)
end
return 0
