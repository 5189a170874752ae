-- Park a job until it is due: its message kept in one hash, its id in its queue's sorted set
-- scored by the due time in milliseconds on Redis's clock (as the breaker reads time), so the
-- workers' clocks play no part. A job parked again replaces its entry.
-- Returns the due time in milliseconds.
local parked_key = KEYS[1]
local messages_key = KEYS[2]
local job_id = ARGV[1]
local wait_ms = tonumber(ARGV[2])
local message = ARGV[3]

local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + wait_ms
redis.call('HSET', messages_key, job_id, message)
redis.call('ZADD', parked_key, string.format('%d', due), job_id)
return due
