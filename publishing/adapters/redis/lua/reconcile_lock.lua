-- Take the reconciler's lock for one pass (one pass at a time fleet-wide). Its value is
-- '<run id>|<token>', the run id being the Redis server's own, new at each start. A lock taken
-- under another run id was left by a pass that a Redis restart (the append-only file keeps the
-- lock) or a failover (the replica had it) ended: it is taken over instead of waited out, since
-- a restart is when the broker may just have lost a message. An empty run id (INFO refused)
-- never takes a lock over. Returns 1 when this pass holds the lock.
local lock_key = KEYS[1]
local value = ARGV[1]
local lock_ms = ARGV[2]
local run_id = ARGV[3]

local held = redis.call('GET', lock_key)
if held then
  local life = string.match(held, '^([^|]+)|')
  if run_id == '' or not life or life == run_id then return 0 end
end
redis.call('SET', lock_key, value, 'PX', lock_ms)
return 1
