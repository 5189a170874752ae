"""Redis implementations of the breaker, job tracking and de-duplication ports.

Every breaker transition is one Lua script run on Redis's own clock (``TIME``), so the
whole fleet shares one breaker a target and no worker's clock skew matters. Scripts are
registered with redis-py, which reloads them after a Redis restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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
from publishing.ordering import Gate, GateDecision
from publishing.priority import Priority
from publishing.target_health import HealthEvent, TargetHealth
from publishing.tracking import Claim, ClaimStatus, JobQuery, JobSnapshot, JobState

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_OPEN = """
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
    _NOW_MS
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
    _NOW_MS
    + _OPEN
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


def run_pipeline(
    client: redis.Redis, build: Callable[[Pipeline], None], scripts: Iterable[Script]
) -> list[Any]:
    """Build and run a pipeline whose scripts are called by ``evalsha`` (see ``eval_script``).
    redis-py would otherwise send SCRIPT EXISTS before every pipeline with scripts; after a
    Redis restart (scripts gone) they are loaded and the pipeline is built and run again."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            return pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            for script in scripts:
                client.script_load(script.script)
    raise AssertionError("unreachable")


def eval_script(script: Script, keys: list[str], args: list[Any], client: Any = None) -> Any:
    """Run a registered script; on a pipeline, queue a bare EVALSHA (``run_pipeline`` loads
    the scripts when Redis has lost them)."""
    if isinstance(client, Pipeline):
        return client.evalsha(script.sha, len(keys), *keys, *args)
    return script(keys=keys, args=args, client=client)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        detail = _text(detail)
        if admitted:
            if detail == "clean":
                return Admit(clean=True)
            return Admit(detail or None)
        return Defer(
            max(0.0, int(wait_ms) / 1000), _STATES[_text(state)], DeferReason(detail), int(down_for_ms) / 1000
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
        raw = {_text(k): _text(v) for k, v in self._client.hgetall(self._keys(target)[0]).items()}
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


# KEYS: job hash, recency zset. ARGV: ttl_ms, capacity, score, job_id, job key prefix,
# field, value, ...
# Records the job, expires it, indexes it, and evicts the oldest beyond capacity or TTL.
_RECORD = """
redis.call('DEL', KEYS[1])
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  for _, id in ipairs(old) do redis.call('DEL', ARGV[5] .. id) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
local expired = tonumber(ARGV[3]) - tonumber(ARGV[1]) / 1000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. expired)
return over
"""

# KEYS: job hash. ARGV: field, value, ... (an empty value deletes the field). Only if tracked.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"""

# KEYS: job hash. ARGV: started_at, attempt key. Marks the job processing (when tracked) and
# returns how many times this attempt has started.
_START = """
local starts = redis.call('HINCRBY', KEYS[1], 'starts:' .. ARGV[2], 1)
redis.call('HSET', KEYS[1], 'state', 'processing', 'started_at', ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], 86400) end
return starts
"""

_FIELDS = (
    "id",
    "fingerprint",
    "alert_name",
    "target",
    "priority",
    "state",
    "retry_count",
    "error_type",
    "last_error",
    "submitted_at",
    "started_at",
    "completed_at",
    "delivered_via",
)


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, JobState | Priority):
        return value.value
    return str(value)


class RedisJobTracker:
    """One hash a job plus a recency index, capped and expiring (SPEC §8)."""

    def __init__(self, client: redis.Redis, *, prefix: str, capacity: int, ttl_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self._capacity = capacity
        self._ttl_ms = int(ttl_s * 1000)
        self._index = f"{prefix}:jobs"
        self._record = client.register_script(_RECORD)
        self._update = client.register_script(_UPDATE)
        self._start = client.register_script(_START)
        self.scripts = [self._record, self._update, self._start]

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def record(self, snapshot: JobSnapshot) -> None:
        self.record_many([snapshot])

    def record_many(self, snapshots: list[JobSnapshot]) -> None:
        def build(pipe: Pipeline) -> None:
            for snapshot in snapshots:
                self._record_one(snapshot, pipe)

        run_pipeline(self._client, build, [self._record])

    def _record_one(self, snapshot: JobSnapshot, client: Any) -> None:
        data = snapshot.to_dict()
        args: list[Any] = [
            self._ttl_ms,
            self._capacity,
            snapshot.submitted_at or 0,
            snapshot.id,
            self._key(""),
        ]
        for name in _FIELDS:
            if data.get(name) is not None:
                args += [name, _encode(data[name])]
        eval_script(self._record, [self._key(snapshot.id), self._index], args, client)

    def update(self, job_id: str, *, client: Any = None, **fields: Any) -> None:
        """``client`` may be a pipeline, to batch this with other writes."""
        args: list[str] = []
        for name, value in fields.items():
            if name not in _FIELDS:
                raise ValueError(f"unknown tracking field {name!r}")
            args += [name, _encode(value)]
        eval_script(self._update, [self._key(job_id)], args, client)

    def mark_started(self, job_id: str, attempt_key: str, started_at: float) -> int:
        return int(self._start(keys=[self._key(job_id)], args=[started_at, attempt_key]))

    def get(self, job_id: str) -> JobSnapshot | None:
        raw = self._client.hgetall(self._key(job_id))
        if not raw or b"id" not in raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return JobSnapshot.from_dict({k: v for k, v in fields.items() if ":" not in k})

    def _scan(self) -> list[tuple[str, list[bytes | None]]]:
        """(job id, [state, priority, target]) for every indexed job, newest first."""
        ids = [_text(i) for i in self._client.zrevrange(self._index, 0, -1)]
        pipe = self._client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self._key(job_id), "state", "priority", "target")
        rows = pipe.execute() if ids else []
        stale = [job_id for job_id, row in zip(ids, rows, strict=True) if row[0] is None]
        if stale:
            self._client.zrem(self._index, *stale)
        return [(job_id, row) for job_id, row in zip(ids, rows, strict=True) if row[0] is not None]

    def list(self, query: JobQuery) -> tuple[list[JobSnapshot], int]:
        wanted = [
            None if query.state is None else query.state.value.encode(),
            None if query.priority is None else query.priority.value.encode(),
            None if query.target is None else query.target.encode(),
        ]
        matches = [
            job_id
            for job_id, row in self._scan()
            if all(w is None or w == v for w, v in zip(wanted, row, strict=True))
        ]
        jobs = [s for s in (self.get(j) for j in matches[: query.limit]) if s is not None]
        return jobs, len(matches)

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in JobState}
        for _, row in self._scan():
            state = row[0]
            if state is not None:
                counts[state.decode()] = counts.get(state.decode(), 0) + 1
        return counts


# KEYS: the claim. ARGV: job_id, window_ms, grace_ms. A claim is "P|job|since_ms" while its
# job is pending and "E|job" once enqueued. Returns {status, job id}.
_CLAIM = (
    _NOW_MS
    + """
local held = redis.call('GET', KEYS[1])
if not held then
  redis.call('SET', KEYS[1], 'P|' .. ARGV[1] .. '|' .. now, 'PX', ARGV[2])
  return {'new', ARGV[1]}
end
local kind, job, since = string.match(held, '^([PE])|([^|]+)|?(%d*)$')
if kind == 'P' and now - tonumber(since) >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], 'P|' .. job .. '|' .. now, 'KEEPTTL')
  return {'taken_over', job}
end
if kind == 'P' then return {'pending', job} end
return {'duplicate', job or held}
"""
)

# KEYS: the claim. ARGV: job_id. Marks a pending claim of that job enqueued.
_MARK = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 3) == 'P|' .. ARGV[1] .. '|' then
  redis.call('SET', KEYS[1], 'E|' .. ARGV[1], 'KEEPTTL')
end
return 1
"""

# KEYS: the claim. ARGV: job_id. Drops a pending claim of that job.
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 3) == 'P|' .. ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisDeduplicator:
    def __init__(self, client: redis.Redis, prefix: str = "publishing") -> None:
        self._client = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._mark = client.register_script(_MARK)
        self._release = client.register_script(_RELEASE)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:dedup:{key}"

    def claim_many(self, claims: list[tuple[str, str]], window_s: float, grace_s: float) -> list[Claim]:
        def build(pipe: Pipeline) -> None:
            for key, job_id in claims:
                args: list[Any] = [job_id, max(1, int(window_s * 1000)), int(grace_s * 1000)]
                eval_script(self._claim, [self._key(key)], args, pipe)

        replies = run_pipeline(self._client, build, [self._claim])
        return [Claim(ClaimStatus(_text(status)), _text(job)) for status, job in replies]

    def mark_enqueued(self, claims: list[tuple[str, str]]) -> None:
        self._run(self._mark, claims)

    def release_many(self, claims: list[tuple[str, str]]) -> None:
        self._run(self._release, claims)

    def _run(self, script: Script, claims: list[tuple[str, str]]) -> None:
        def build(pipe: Pipeline) -> None:
            for key, job_id in claims:
                eval_script(script, [self._key(key)], [job_id], pipe)

        run_pipeline(self._client, build, [script])


# KEYS: the alert's order hash. ARGV: firing (1|0), job_id, submitted_at, lease_ms.
_GATE = (
    _NOW_MS
    + """
local resolved = tonumber(redis.call('HGET', KEYS[1], 'resolved_at') or '-1')
if ARGV[1] == '1' then
  if resolved >= tonumber(ARGV[3]) then return {'superseded', 0} end
  redis.call('HSET', KEYS[1], 'inflight', ARGV[2], 'inflight_until', now + tonumber(ARGV[4]))
  redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[1]), tonumber(ARGV[4]) * 2))
  return {'go', 0}
end
local holder = redis.call('HGET', KEYS[1], 'inflight')
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'inflight_until') or '0')
if holder and until_ms > now then return {'wait', until_ms - now} end
return {'go', 0}
"""
)

# KEYS: the alert's order hash. ARGV: submitted_at, ttl_ms.
_NOTE_RESOLVED = """
local current = tonumber(redis.call('HGET', KEYS[1], 'resolved_at') or '-1')
if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'resolved_at', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the alert's order hash. ARGV: job_id.
_LEAVE = """
if redis.call('HGET', KEYS[1], 'inflight') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'inflight', 'inflight_until')
end
return 1
"""


class RedisOrderGate:
    """Firing-before-resolved ordering (``publishing.ordering``), one hash an alert and target."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._gate = client.register_script(_GATE)
        self._note = client.register_script(_NOTE_RESOLVED)
        self._leave = client.register_script(_LEAVE)

    def _key(self, target: str, fingerprint: str) -> str:
        return f"{self._prefix}:order:{{{target}}}:{fingerprint}"

    def note_resolved(self, target: str, fingerprint: str, submitted_at: float) -> None:
        self._note(keys=[self._key(target, fingerprint)], args=[repr(submitted_at), self._ttl_ms])

    def enter(
        self, target: str, fingerprint: str, job_id: str, firing: bool, submitted_at: float, lease_s: float
    ) -> GateDecision:
        gate, wait_ms = self._gate(
            keys=[self._key(target, fingerprint)],
            args=[1 if firing else 0, job_id, repr(submitted_at), max(1, int(lease_s * 1000))],
        )
        return GateDecision(Gate(_text(gate)), max(0.0, int(wait_ms) / 1000))

    def leave(self, target: str, fingerprint: str, job_id: str) -> None:
        self._leave(keys=[self._key(target, fingerprint)], args=[job_id])


# KEYS: health hash, breaker history list. ARGV: at, error, history_max, event...
_HEALTH = """
for i = 4, #ARGV do
  local event = ARGV[i]
  redis.call('HINCRBY', KEYS[1], 'count:' .. event, 1)
  if event == 'success' then redis.call('HSET', KEYS[1], 'last_success_at', ARGV[1]) end
  if event == 'failure' then redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[1], 'last_error', ARGV[2]) end
  if event == 'tripped' or event == 'recovered' then
    redis.call('LPUSH', KEYS[2], event .. ' ' .. ARGV[1])
    redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
  end
end
return 1
"""


class RedisTargetHealth:
    """Per-target health counters and history (``publishing.target_health``)."""

    HISTORY_MAX = 50

    def __init__(self, client: redis.Redis, prefix: str = "publishing") -> None:
        self._client = client
        self._prefix = prefix
        self._record = client.register_script(_HEALTH)
        self.scripts = [self._record]

    def _keys(self, target: str) -> list[str]:
        base = f"{self._prefix}:health:{{{target}}}"
        return [base, f"{base}:breaker"]

    def record(
        self, target: str, events: list[HealthEvent], at: float, error: str | None = None, client: Any = None
    ) -> None:
        if events:
            args = [repr(at), error or "", self.HISTORY_MAX, *(e.value for e in events)]
            eval_script(self._record, self._keys(target), args, client)

    def get(self, target: str) -> TargetHealth:
        key, history = self._keys(target)
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.lrange(history, 0, -1)
        raw, entries = pipe.execute()
        fields = {_text(k): _text(v) for k, v in raw.items()}
        counts = {k.split(":", 1)[1]: int(v) for k, v in fields.items() if k.startswith("count:")}
        transitions = []
        for entry in entries:
            event, _, at = _text(entry).partition(" ")
            transitions.append({"event": event, "at": float(at)})
        return TargetHealth(
            target=target,
            counts=counts,
            last_success_at=float(fields["last_success_at"]) if "last_success_at" in fields else None,
            last_failure_at=float(fields["last_failure_at"]) if "last_failure_at" in fields else None,
            last_error=fields.get("last_error") or None,
            breaker_history=transitions,
        )
