-- The carrier takes its group: the group closes (the next job of its key opens another), each
-- live firing member is marked in flight (a resolve of its alert waits until the group is
-- done), and the members come back in join order as {member, superseded (0|1), ...}. Taking
-- a taken group returns the same members (the carrier's retry). Nil when the group is gone.
local base = KEYS[1]
local gid = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local meta = base .. 'g:' .. gid
if redis.call('EXISTS', meta) == 0 then
  return nil
end
redis.call('HSET', meta, 'taken', '1')
local open_key = base .. 'open:' .. redis.call('HGET', meta, 'key')
if redis.call('GET', open_key) == gid then
  redis.call('DEL', open_key)
end
local superseded = base .. 's:' .. gid
local out = {}
for _, job_id in ipairs(redis.call('ZRANGE', base .. 'o:' .. gid, 0, -1)) do
  local member = redis.call('HGET', base .. 'm:' .. gid, job_id)
  local gone = redis.call('SISMEMBER', superseded, job_id)
  out[#out + 1] = member
  out[#out + 1] = gone
  if gone == 0 then
    local m = cjson.decode(member)
    if m['firing'] then
      redis.call('SET', base .. 'inflight:' .. m['fingerprint'], gid, 'PX', ttl_ms)
    end
  end
end
return out
