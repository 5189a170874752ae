-- A group is done: its message delivered (ending 'done': every member remembers the
-- carrier, so a redelivered member is not sent again; a superseded one remembers '') or its
-- carrier failed for good (ending 'solo': every member is sent on its own from now on).
-- Forgets the group and its in-flight marks. Returns 1, or 0 when the group was already gone.
local base = KEYS[1]
local gid = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local ending = ARGV[3]
local meta = base .. 'g:' .. gid
if redis.call('EXISTS', meta) == 0 then
  return 0
end
local carrier = redis.call('HGET', meta, 'carrier')
local open_key = base .. 'open:' .. redis.call('HGET', meta, 'key')
if redis.call('GET', open_key) == gid then
  redis.call('DEL', open_key)
end
local superseded = base .. 's:' .. gid
for _, job_id in ipairs(redis.call('ZRANGE', base .. 'o:' .. gid, 0, -1)) do
  redis.call('DEL', base .. 'job:' .. job_id)
  if ending == 'done' then
    local by = carrier
    if redis.call('SISMEMBER', superseded, job_id) == 1 then
      by = ''
    end
    redis.call('SET', base .. 'done:' .. job_id, by, 'PX', ttl_ms)
  else
    redis.call('SET', base .. 'solo:' .. job_id, '1', 'PX', ttl_ms)
  end
end
for _, fingerprint in ipairs(redis.call('HKEYS', base .. 'f:' .. gid)) do
  local mark = base .. 'inflight:' .. fingerprint
  if redis.call('GET', mark) == gid then
    redis.call('DEL', mark)
  end
end
redis.call('DEL', meta, base .. 'm:' .. gid, base .. 'o:' .. gid, base .. 's:' .. gid, base .. 'f:' .. gid)
return 1
