"""Firing-before-resolved ordering on Redis (``publishing.ordering``)."""

from __future__ import annotations

import redis

from publishing.adapters.redis.client import NOW_MS, text
from publishing.ordering import Gate, GateDecision

# KEYS: the alert's order hash. ARGV: firing (1|0), job_id, submitted_at, lease_ms.
_GATE = (
    NOW_MS
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
        return GateDecision(Gate(text(gate)), max(0.0, int(wait_ms) / 1000))

    def leave(self, target: str, fingerprint: str, job_id: str) -> None:
        self._leave(keys=[self._key(target, fingerprint)], args=[job_id])
