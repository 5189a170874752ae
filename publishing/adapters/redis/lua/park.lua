-- Park a job until it is due: its message kept in one hash, its id in its queue's sorted set
-- scored by the due time in milliseconds on Redis's clock (as the breaker reads time), so the
-- workers' clocks play no part. A job parked again replaces its entry (and leaves any hold).
-- With a hold target, the job's hold ("<queue index>|<latest ms>|<target>") is kept too:
-- once due, park_claim holds it while that target's breaker admits nothing.
-- Returns the due time in milliseconds.
local parked_key = KEYS[1]
local messages_key = KEYS[2]
local holds_key = KEYS[3]
local job_id = ARGV[1]
local wait_ms = tonumber(ARGV[2])
local message = ARGV[3]
local queue_index = ARGV[4]
local hold_target = ARGV[5] -- '': no hold
local latest_ms = tonumber(ARGV[6])
local held_prefix = ARGV[7]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = now + wait_ms
local previous = redis.call('HGET', holds_key, job_id)
if previous then
  -- Parked again while held (a message delivered twice): one entry a job.
  local _, _, old_target = string.find(previous, '^[^|]*|[^|]*|(.*)$')
  redis.call('ZREM', held_prefix .. old_target, job_id)
end
if hold_target ~= '' then
  redis.call('HSET', holds_key, job_id, queue_index .. '|' .. string.format('%d', now + latest_ms) .. '|' .. hold_target)
elseif previous then
  redis.call('HDEL', holds_key, job_id)
end
redis.call('HSET', messages_key, job_id, message)
redis.call('ZADD', parked_key, string.format('%d', due), job_id)
return due
