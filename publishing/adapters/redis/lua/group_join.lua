-- A grouped target's job joins its storm group (docs/design.md (Storm grouping)). `base` is
-- the target's key prefix; every key of the group is built under it (one hash tag a target).
-- A job already in a group learns where it stands: its group's carrier is told whether the
-- window is over (or the group already taken by it), a member who carries it. A new job
-- joins the open group of its key, replacing (superseding) a member of the same alert, or
-- opens one and carries it; it carries the open group instead when that group's window is
-- over and its carrier has not been seen for late_ms. A resolve whose alert's firing is in a
-- group being sent waits.
-- Asked without joining (`joining` false), a job in no group learns only that ('new').
-- Returns {role, carrier or group id, wait_ms}.
local base = KEYS[1]
local key = ARGV[1]
local job_id = ARGV[2]
local fingerprint = ARGV[3]
local firing = ARGV[4] == '1'
local member = ARGV[5]
local wait_ms = tonumber(ARGV[6])
local ttl_ms = tonumber(ARGV[7])
local late_ms = tonumber(ARGV[8])
local order_wait_ms = tonumber(ARGV[9])
local joining = ARGV[10] == '1'

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if redis.call('EXISTS', base .. 'solo:' .. job_id) == 1 then
  return {'solo', '', 0}
end
local done = redis.call('GET', base .. 'done:' .. job_id)
if done then
  return {'done', done, 0}
end

local function carrier_answer(meta, gid)
  redis.call('HSET', meta, 'seen', now)
  local due = tonumber(redis.call('HGET', meta, 'due'))
  if redis.call('HGET', meta, 'taken') == '1' or now >= due then
    return {'due', gid, 0}
  end
  return {'waiting', gid, due - now}
end

local gid = redis.call('GET', base .. 'job:' .. job_id)
if gid and redis.call('EXISTS', base .. 'g:' .. gid) == 1 then
  local meta = base .. 'g:' .. gid
  local carrier = redis.call('HGET', meta, 'carrier')
  if carrier ~= job_id then
    return {'joined', carrier, 0}
  end
  return carrier_answer(meta, gid)
end
if not joining then
  return {'new', '', 0}
end

if not firing then
  local holder = redis.call('GET', base .. 'inflight:' .. fingerprint)
  if holder and redis.call('EXISTS', base .. 'g:' .. holder) == 1 then
    return {'order_wait', holder, order_wait_ms}
  end
end

local function add(g)
  local fps = base .. 'f:' .. g
  local earlier = redis.call('HGET', fps, fingerprint)
  if earlier and earlier ~= job_id then
    redis.call('SADD', base .. 's:' .. g, earlier)
  end
  redis.call('HSET', fps, fingerprint, job_id)
  redis.call('HSET', base .. 'm:' .. g, job_id, member)
  local seq = redis.call('HINCRBY', base .. 'g:' .. g, 'n', 1)
  redis.call('ZADD', base .. 'o:' .. g, seq, job_id)
  redis.call('SET', base .. 'job:' .. job_id, g, 'PX', ttl_ms)
  for _, name in ipairs({'g:', 'm:', 'o:', 's:', 'f:'}) do
    redis.call('PEXPIRE', base .. name .. g, ttl_ms)
  end
end

gid = redis.call('GET', base .. 'open:' .. key)
if gid and redis.call('EXISTS', base .. 'g:' .. gid) == 1 then
  local meta = base .. 'g:' .. gid
  add(gid)
  local due = tonumber(redis.call('HGET', meta, 'due'))
  if now >= due and now - tonumber(redis.call('HGET', meta, 'seen')) > late_ms then
    -- Its window is over and its carrier late (behind a backlog, or gone): this job
    -- carries the group instead.
    redis.call('HSET', meta, 'carrier', job_id)
    return carrier_answer(meta, gid)
  end
  return {'joined', redis.call('HGET', meta, 'carrier'), 0}
end

gid = job_id
redis.call('HSET', base .. 'g:' .. gid, 'key', key, 'carrier', job_id, 'due', now + wait_ms, 'seen', now, 'taken', '0')
add(gid)
redis.call('SET', base .. 'open:' .. key, gid, 'PX', ttl_ms)
return {'opened', gid, wait_ms}
