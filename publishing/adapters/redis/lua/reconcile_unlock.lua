-- Release the reconciler's lock, only if this pass still holds it (it may have expired and
-- been taken by another worker's pass). Returns 1 when released.
local lock_key = KEYS[1]
local token = ARGV[1]

if redis.call('GET', lock_key) == token then return redis.call('DEL', lock_key) end
return 0
