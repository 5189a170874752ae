"""Per-target health counters and breaker history on Redis (``publishing.target_health``)."""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

from publishing.adapters.redis.breaker import KEY_TTL_S
from publishing.adapters.redis.client import RedisStore, StoreScript, eval_script, text
from publishing.target_health import HealthEvent, TargetHealth


class RedisTargetHealth(RedisStore):
    """Per-target health counters and history (``publishing.target_health``)."""

    HISTORY_MAX = 50

    _record = StoreScript("health_record")

    @property
    def scripts(self) -> list[Script]:
        """The scripts ``record`` queues on a caller's pipeline (``run_pipeline`` loads them)."""
        return [self._record]

    def _keys(self, target: str) -> list[str]:
        base = self._target_key("health", target)
        return [base, f"{base}:breaker"]

    def record(
        self, target: str, events: list[HealthEvent], at: float, error: str | None = None, client: Any = None
    ) -> None:
        if events:
            args = [repr(at), error or "", self.HISTORY_MAX, KEY_TTL_S * 1000, *(e.value for e in events)]
            eval_script(self._record, self._keys(target), args, client)

    def get(self, target: str) -> TargetHealth:
        key, history = self._keys(target)
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.lrange(history, 0, -1)
        raw, entries = pipe.execute()
        fields = {text(k): text(v) for k, v in raw.items()}
        counts = {k.split(":", 1)[1]: int(v) for k, v in fields.items() if k.startswith("count:")}
        transitions = []
        for entry in entries:
            event, _, at = text(entry).partition(" ")
            transitions.append({"event": event, "at": float(at)})
        return TargetHealth(
            target=target,
            counts=counts,
            last_success_at=float(fields["last_success_at"]) if "last_success_at" in fields else None,
            last_failure_at=float(fields["last_failure_at"]) if "last_failure_at" in fields else None,
            last_error=fields.get("last_error") or None,
            breaker_history=transitions,
        )
