-- Pause a target (it asked for it with Retry-After). Workers pause concurrently, so a pause
-- only ever lengthens: a shorter one never cuts a longer one another worker set.
-- Returns {set (1 when this call started or lengthened the pause, else 0), the pause left in
-- milliseconds}.
local pause_key = KEYS[1]
local pause_ms = tonumber(ARGV[1])

local left = redis.call('PTTL', pause_key)
if left >= pause_ms then return {0, left} end
redis.call('SET', pause_key, '1', 'PX', pause_ms)
return {1, pause_ms}
