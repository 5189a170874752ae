-- Forget claimed jobs now on their queues: each only while its in-flight entry still carries
-- this claim's lease (after the lease ended another mover may have claimed it again, and that
-- claim is its to confirm). Returns how many were forgotten.
local moving_key = KEYS[1]
local moving_messages_key = KEYS[2]
local lease = tonumber(ARGV[1])

local forgotten = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', moving_key, ARGV[i])
  if score and tonumber(score) == lease then
    redis.call('ZREM', moving_key, ARGV[i])
    redis.call('HDEL', moving_messages_key, ARGV[i])
    forgotten = forgotten + 1
  end
end
return forgotten
