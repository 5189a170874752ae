"""The books of a fault test: every job a 202 accepted is delivered (a target answered 2xx to
a request carrying its id in ``Idempotency-Key``) or has its DLQ row; none is missing, and a
delivery seen twice carries the same job id both times.

``settle`` waits for quiescence: every job accounted for and the broker empty (no message
waiting in a queue, none held unacknowledged by a worker), steadily.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import sqlalchemy as sa

from publishing.adapters.redis.parking import RedisParkingLot
from tests.support.fault_target import Hit

QUEUES = ("high", "medium", "low")


@dataclass
class Books:
    submitted: int
    delivered: int
    in_dlq: int
    lost: int
    duplicates: int
    # Deliveries of one alert to one target under more than one job id (should be 0).
    duplicates_other_id: int
    seconds: float
    attempts: int = 0
    delivered_and_dlq: int = 0
    dlq_rows_extra: int = 0
    # Job ids a target saw that no 202 named.
    unknown: int = 0
    lost_ids: list[str] = field(default_factory=list)

    @property
    def duplicates_same_id(self) -> bool:
        return self.duplicates_other_id == 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duplicates_same_id"] = self.duplicates_same_id
        data["lost_ids"] = self.lost_ids[:20]
        return data

    def line(self) -> str:
        return (
            f"submitted={self.submitted} delivered={self.delivered} in_dlq={self.in_dlq} "
            f"lost={self.lost} duplicates={self.duplicates} "
            f"(same id: {'yes' if self.duplicates_same_id else 'NO'}) seconds={self.seconds:.1f}"
        )


def accepted_jobs(jobs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Job id -> its first 202 entry (a duplicate answer names the same id)."""
    found: dict[str, Mapping[str, Any]] = {}
    for job in jobs:
        found.setdefault(str(job["id"]), job)
    return found


def check_books(
    jobs: Iterable[Mapping[str, Any]],
    hits: Iterable[Hit],
    dlq_job_ids: Iterable[str],
    *,
    seconds: float,
) -> Books:
    submitted = accepted_jobs(jobs)
    all_hits = list(hits)
    delivered_hits = [h for h in all_hits if h.delivered and h.job_id]
    per_id = Counter(h.job_id for h in delivered_hits)
    dlq_rows = Counter(str(j) for j in dlq_job_ids)
    delivered = {j for j in per_id if j in submitted}
    in_dlq = {j for j in dlq_rows if j in submitted}
    lost = sorted(set(submitted) - delivered - in_dlq)
    # One alert to one target: (target name, fingerprint) -> the job ids it was delivered as.
    ids_by_alert: dict[tuple[str, str | None], set[str]] = {}
    for hit in delivered_hits:
        assert hit.job_id is not None
        ids_by_alert.setdefault((hit.target, hit.fingerprint()), set()).add(hit.job_id)
    return Books(
        submitted=len(submitted),
        delivered=len(delivered),
        in_dlq=len(in_dlq),
        lost=len(lost),
        duplicates=sum(n - 1 for n in per_id.values()),
        duplicates_other_id=sum(len(ids) - 1 for ids in ids_by_alert.values()),
        seconds=round(seconds, 1),
        attempts=len(all_hits),
        delivered_and_dlq=len(delivered & in_dlq),
        dlq_rows_extra=sum(n - 1 for n in dlq_rows.values()),
        unknown=len(set(per_id) - set(submitted)),
        lost_ids=lost,
    )


def dlq_job_ids(database_url: str) -> list[str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(sa.text("SELECT job_id FROM publishing_dlq"))]
    finally:
        engine.dispose()


def dlq_rows(database_url: str) -> list[dict[str, Any]]:
    """Every DLQ row with every column."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM publishing_dlq"))]
    finally:
        engine.dispose()


def broker_busy(client: redis.Redis, prefix: str = "publishing") -> int:
    """Messages waiting in a queue, held unacknowledged by a worker, or jobs parked until due."""
    lot = RedisParkingLot(client, prefix)
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    pipe.hlen("unacked")
    for key in [*lot.queue_keys, lot.moving_key]:
        pipe.zcard(key)
    return int(sum(pipe.execute()))


def settle(
    accounted: Callable[[], bool],
    client: redis.Redis,
    *,
    timeout_s: float,
    quiet_s: float = 1.5,
    hopeless_s: float = 10.0,
) -> bool:
    """Wait until ``accounted()`` holds and the broker stays empty for ``quiet_s``. False when
    ``timeout_s`` passes first, or when the broker has stayed empty for ``hopeless_s`` with
    jobs still unaccounted for: nothing is left that could bring them (they are lost)."""
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    empty_since: float | None = None
    while time.monotonic() < deadline:
        try:
            empty = broker_busy(client) == 0
            done = empty and accounted()
        except (redis.RedisError, sa.exc.OperationalError):
            empty = done = False
        now = time.monotonic()
        quiet_since = (quiet_since or now) if done else None
        empty_since = (empty_since or now) if empty and not done else None
        if quiet_since is not None and now - quiet_since >= quiet_s:
            return True
        if empty_since is not None and now - empty_since >= hopeless_s:
            return False
        time.sleep(0.2)
    return False
