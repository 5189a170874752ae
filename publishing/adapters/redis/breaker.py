"""The fleet-wide circuit breaker, rate limiter and pauses on Redis: every transition is one Lua
script run on Redis's own clock, so the whole fleet shares one breaker a target."""

from __future__ import annotations

import uuid

import redis

from publishing.adapters.redis.client import NOW_MS, text
from publishing.breaker import (
    Admit,
    BreakerConfig,
    BreakerDecision,
    BreakerState,
    BreakerStatus,
    Defer,
    DeferReason,
    RateLimit,
    Transition,
)

_OPEN_BREAKER = """
local function open_breaker(now)
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at_ms', now, 'successes', 0, 'failures', 0)
  redis.call('HSETNX', KEYS[1], 'down_since_ms', now)
  redis.call('HINCRBY', KEYS[1], 'trips', 1)
  redis.call('DEL', KEYS[2])
end
"""

# KEYS: breaker hash, probe zset, pause key, rate-limit key.
# ARGV: open_timeout_ms, probes, lease_ms, probe_id, retry_ms, interval_ms (0: no limit),
# tolerance_ms. Returns {admitted (0|1), probe id or defer reason, wait_ms, state}.
# Nothing is taken (probe slot, token) unless the attempt is admitted.
_ACQUIRE = (
    NOW_MS
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local down_for = now - tonumber(redis.call('HGET', KEYS[1], 'down_since_ms') or now)
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return {0, 'paused', paused, state, down_for} end
if state == 'open' then
  local reopen = tonumber(redis.call('HGET', KEYS[1], 'opened_at_ms')) + tonumber(ARGV[1])
  if now < reopen then return {0, 'open', reopen - now, state, down_for} end
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state, 'successes', 0)
  redis.call('DEL', KEYS[2])
end
if state == 'half_open' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, 'half_open', math.min(tonumber(ARGV[5]), tonumber(first[2]) - now), state, down_for}
  end
end
local interval = tonumber(ARGV[6])
if interval > 0 then
  local tat = math.max(tonumber(redis.call('GET', KEYS[4]) or now), now)
  local early = tat - now - tonumber(ARGV[7])
  if early > 0 then return {0, 'rate_limited', early, state, down_for} end
  redis.call('SET', KEYS[4], tat + interval, 'PX', math.ceil(tat + interval - now + tonumber(ARGV[7]) + 1000))
end
if state == 'closed' then
  local clean = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') == 0 and 'clean' or ''
  return {1, clean, 0, state, 0}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 2)
return {1, ARGV[4], 0, state, down_for}
"""
)

# ARGV: success_threshold, probe_id. Returns 2 when this success closed the breaker.
_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  if tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') > 0 then
    redis.call('HSET', KEYS[1], 'failures', 0)
  end
  return 0
end
if state == 'half_open' and ARGV[2] ~= '' and redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then
  local successes = redis.call('HINCRBY', KEYS[1], 'successes', 1)
  if successes >= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'successes', 0)
    redis.call('HDEL', KEYS[1], 'opened_at_ms', 'down_since_ms')
    redis.call('HINCRBY', KEYS[1], 'recoveries', 1)
    redis.call('DEL', KEYS[2])
    return 2
  end
end
return 0
"""

# ARGV: failure_threshold, probe_id. Returns 1 when this failure opened the breaker.
_FAILURE = (
    NOW_MS
    + _OPEN_BREAKER
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  if redis.call('HINCRBY', KEYS[1], 'failures', 1) >= tonumber(ARGV[1]) then
    open_breaker(now)
    return 1
  end
  return 0
end
if state == 'half_open' and ARGV[2] ~= '' and redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then
  open_breaker(now)
  return 1
end
return 0
"""
)


_STATES = {"closed": BreakerState.CLOSED, "open": BreakerState.OPEN, "half_open": BreakerState.HALF_OPEN}


class RedisBreakerStore:
    # While every half-open probe slot is taken, ask again after at most this long.
    HALF_OPEN_RETRY_S = 1.0

    def __init__(self, client: redis.Redis, prefix: str = "publishing") -> None:
        self._client = client
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._success = client.register_script(_SUCCESS)
        self._failure = client.register_script(_FAILURE)

    def _keys(self, target: str) -> list[str]:
        # The hash tag keeps every key of a target in one cluster slot.
        base = f"{self._prefix}:breaker:{{{target}}}"
        return [base, f"{base}:probes", f"{base}:pause", f"{base}:rate"]

    def acquire(
        self, target: str, config: BreakerConfig, lease_s: float, rate: RateLimit | None = None
    ) -> BreakerDecision:
        admitted, detail, wait_ms, state, down_for_ms = self._acquire(
            keys=self._keys(target),
            args=[
                int(config.open_timeout_s * 1000),
                config.half_open_probes,
                max(1, int(lease_s * 1000)),
                uuid.uuid4().hex,
                int(self.HALF_OPEN_RETRY_S * 1000),
                int(rate.interval_s * 1000) if rate else 0,
                int(rate.tolerance_s * 1000) if rate else 0,
            ],
        )
        detail = text(detail)
        if admitted:
            if detail == "clean":
                return Admit(clean=True)
            return Admit(detail or None)
        return Defer(
            max(0.0, int(wait_ms) / 1000), _STATES[text(state)], DeferReason(detail), int(down_for_ms) / 1000
        )

    def pause(self, target: str, seconds: float) -> None:
        key = self._keys(target)[2]
        # Extend a pause, never shorten one another worker set.
        if int(self._client.pttl(key)) < seconds * 1000:
            self._client.set(key, "1", px=max(1, int(seconds * 1000)))

    def record_success(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        result = self._success(keys=self._keys(target), args=[config.success_threshold, probe_id or ""])
        return Transition.RECOVERED if int(result) == 2 else Transition.NONE

    def record_failure(self, target: str, config: BreakerConfig, probe_id: str | None) -> Transition:
        result = self._failure(keys=self._keys(target), args=[config.failure_threshold, probe_id or ""])
        return Transition.TRIPPED if int(result) == 1 else Transition.NONE

    def release(self, target: str, probe_id: str | None) -> None:
        if probe_id:
            self._client.zrem(self._keys(target)[1], probe_id)

    def status(self, target: str) -> BreakerStatus:
        raw = {text(k): text(v) for k, v in self._client.hgetall(self._keys(target)[0]).items()}
        opened = raw.get("opened_at_ms")
        return BreakerStatus(
            target=target,
            state=_STATES[raw.get("state", "closed")],
            consecutive_failures=int(raw.get("failures", 0)),
            probe_successes=int(raw.get("successes", 0)),
            opened_at_s=int(opened) / 1000 if opened else None,
            trips=int(raw.get("trips", 0)),
            recoveries=int(raw.get("recoveries", 0)),
        )

    def reset(self, target: str) -> None:
        key, probes, pause, _ = self._keys(target)
        pipe = self._client.pipeline()
        pipe.hset(key, mapping={"state": "closed", "failures": 0, "successes": 0})
        pipe.hdel(key, "opened_at_ms", "down_since_ms")
        pipe.delete(probes, pause)
        pipe.execute()
