-- Claim up to ``limit`` jobs for a mover to send: first those whose claim's lease ended
-- unconfirmed (their mover died), then due parked jobs, queue by queue (high, medium, low),
-- each in due order. A claimed job moves, with its message, to the
-- in-flight set scored by the end of its lease; ``park_confirm`` forgets it once it is sent.
-- A due job with a hold (park.lua) whose target's breaker is not closed, or which is paused,
-- goes through only as the first of its target in this call (to probe, or to find the breaker
-- still open and park again); the others move to the target's held set, scored by their
-- latest time. A held set goes back to its queues whole once its target admits again, and a
-- held job alone at its latest. While the target is half-open one held job a call goes back
-- (the breaker needs probes to close, and held jobs are the only ones left); while it is open
-- or paused, one every ``trickle_ms`` fleet-wide, so a target whose probing jobs all left
-- (rerouted, dead-lettered) is still probed. At most ``budget`` held jobs are released and
-- ``budget`` due jobs looked at a call, so one call stays short whatever the backlog.
-- Returns {lease, job_id, message, job_id, message, ...}; lease names this claim.
local moving_key = KEYS[1]
local moving_messages_key = KEYS[2]
local messages_key = KEYS[3]
local high_key = KEYS[4]
local medium_key = KEYS[5]
local low_key = KEYS[6]
local holds_key = KEYS[7]
local held_targets_key = KEYS[8]
local trickle_key = KEYS[9]
local limit = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local held_prefix = ARGV[4]
local breaker_prefix = ARGV[5]
local trickle_ms = tonumber(ARGV[6])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = string.format('%d', now + lease_ms)
local out = {lease}
local claimed = 0
local queue_keys = {high_key, medium_key, low_key}

-- The breaker's keys as publishing/adapters/redis/breaker.py names them; read, never written.
-- A target's state for this call: 'closed' (it admits), 'paused', 'open' or 'half_open'.
local state_cache = {}
local function state_of(target)
  local known = state_cache[target]
  if known then return known end
  local breaker_key = breaker_prefix .. '{' .. target .. '}'
  local state = redis.call('HGET', breaker_key, 'state') or 'closed'
  if redis.call('PTTL', breaker_key .. ':pause') > 0 then state = 'paused' end
  state_cache[target] = state
  return state
end
local function blocked(target)
  return state_of(target) ~= 'closed'
end

local function parse_hold(hold)
  local _, _, queue_index, latest, target = string.find(hold, '^([^|]*)|([^|]*)|(.*)$')
  return tonumber(queue_index), tonumber(latest), target
end

local expired = redis.call('ZRANGEBYSCORE', moving_key, '-inf', now, 'LIMIT', 0, limit)
for _, job_id in ipairs(expired) do
  local message = redis.call('HGET', moving_messages_key, job_id)
  if message then
    redis.call('ZADD', moving_key, lease, job_id)
    out[#out + 1] = job_id
    out[#out + 1] = message
    claimed = claimed + 1
  else
    redis.call('ZREM', moving_key, job_id)
  end
end

-- Held jobs whose target admits again, or whose latest time has come, are due now.
local released = 0
for _, target in ipairs(redis.call('SMEMBERS', held_targets_key)) do
  if released >= budget then break end
  local held_key = held_prefix .. target
  local state = state_of(target)
  local ids
  if state == 'closed' then
    ids = redis.call('ZRANGE', held_key, 0, budget - released - 1)
  else
    ids = redis.call('ZRANGEBYSCORE', held_key, '-inf', now, 'LIMIT', 0, budget - released)
    local next_ms = tonumber(redis.call('HGET', trickle_key, target) or 0)
    if #ids == 0 and (state == 'half_open' or now >= next_ms) then
      -- Back to its queue, due now, still held: it goes through as its target's one this call.
      ids = redis.call('ZRANGE', held_key, 0, 0)
      if state ~= 'half_open' then
        redis.call('HSET', trickle_key, target, string.format('%d', now + trickle_ms))
      end
    end
  end
  for _, job_id in ipairs(ids) do
    local hold = redis.call('HGET', holds_key, job_id)
    local queue_index = hold and parse_hold(hold) or 3
    redis.call('ZADD', queue_keys[queue_index] or low_key, now, job_id)
    redis.call('ZREM', held_key, job_id)
  end
  released = released + #ids
  if redis.call('ZCARD', held_key) == 0 then
    redis.call('SREM', held_targets_key, target)
    redis.call('HDEL', trickle_key, target)
  end
end

local passed = {}
local scanned = 0
for _, parked_key in ipairs(queue_keys) do
  while claimed < limit and scanned < budget do
    local want = math.min(limit - claimed, budget - scanned)
    local due = redis.call('ZRANGEBYSCORE', parked_key, '-inf', now, 'LIMIT', 0, want)
    for _, job_id in ipairs(due) do
      scanned = scanned + 1
      local hold = redis.call('HGET', holds_key, job_id)
      local hold_target = nil
      local latest = 0
      if hold then
        local _, hold_latest, target = parse_hold(hold)
        if hold_latest > now and blocked(target) then
          if passed[target] then
            hold_target, latest = target, hold_latest
          else
            passed[target] = true
          end
        end
      end
      redis.call('ZREM', parked_key, job_id)
      if hold_target then
        redis.call('ZADD', held_prefix .. hold_target, string.format('%d', latest), job_id)
        redis.call('SADD', held_targets_key, hold_target)
        redis.call('HSETNX', trickle_key, hold_target, string.format('%d', now + trickle_ms))
      else
        local message = redis.call('HGET', messages_key, job_id)
        redis.call('HDEL', messages_key, job_id)
        redis.call('HDEL', holds_key, job_id)
        if message then
          redis.call('ZADD', moving_key, lease, job_id)
          redis.call('HSET', moving_messages_key, job_id, message)
          out[#out + 1] = job_id
          out[#out + 1] = message
          claimed = claimed + 1
        end
      end
    end
    if #due < want then break end
  end
end
return out
