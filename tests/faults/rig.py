"""The product as a fault scenario runs it: the real API (``create_app``) in a thread, worker
processes, loopback targets, and the books at the end.

Retries are fast and the visibility timeout short (10 s), so the messages of a killed worker
come back within about 15 s (10 s plus a 5 s restore sweep).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis

from publishing.adapters.redis.parking import RedisParkingLot
from publishing.adapters.redis.reconcile import message_id
from publishing.routing import QUEUES
from publishing.settings import Settings
from tests.support.alert_api import AlertSender, ApiThread
from tests.support.books import Books, check_books, dlq_job_ids, dlq_rows, settle
from tests.support.fault_target import FaultTarget
from tests.support.fleet import write_targets
from tests.support.pipeline import alertmanager_payload
from tests.support.procs import Fleet

FAULT_ENV = {
    "PUBLISHING_RETRY_BASE_S": "0.2",
    "PUBLISHING_RETRY_MAX_BACKOFF_S": "2",
    "PUBLISHING_RETRY_JITTER_S": "0.1",
    "PUBLISHING_RETRY_AFTER_MAX_S": "2",
    "PUBLISHING_MAX_RETRIES": "8",
    "PUBLISHING_VISIBILITY_TIMEOUT_S": "10",
    "PUBLISHING_HTTP_TIMEOUT_S": "3",
    "PUBLISHING_BREAKER_OPEN_TIMEOUT_S": "1",
}


# The worker as shipped (gevent: one process, its jobs sharing Redis round trips) and prefork
# beside it, as the fault scenarios run each: ``fleet.start(name, **POOLS[pool])``.
POOLS = {"prefork": {"pool": "prefork", "concurrency": 4}, "gevent": {"pool": "gevent", "concurrency": 50}}

# The reconciler (docs/design.md (Reconciler)) looking every 2 s, after 3 s: it sends again a
# message that a kill took from its queue before kombu recorded it as unacknowledged.
FAST_RECONCILER = {"PUBLISHING_RECONCILE_INTERVAL_S": "2", "PUBLISHING_RECONCILE_GRACE_S": "3"}


def webhook(target: FaultTarget, **more: Any) -> dict[str, Any]:
    """A webhook target (no provider rate limit) pointing at ``target``."""
    return {"name": target.name, "type": "webhook", "url": f"{target.url}/hook", **more}


def am_alert(name: str, *, severity: str = "critical", **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": severity, **labels}
    return {
        "status": "firing",
        "labels": all_labels,
        "annotations": {"summary": f"{name} is happening"},
        "startsAt": "2026-11-28T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.local/graph",
        "fingerprint": hashlib.sha256(repr(sorted(all_labels.items())).encode()).hexdigest()[:16],
    }


def am_payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return alertmanager_payload(*alerts)


def payloads(
    prefix: str, count: int, per_payload: int = 5, severities: Iterable[str] = ("critical",)
) -> list[dict[str, Any]]:
    """``count`` distinct alerts in payloads of ``per_payload``, severities taken in turn."""
    cycle = list(severities)
    alerts = [
        am_alert(f"{prefix}{i}", severity=cycle[i % len(cycle)], instance=f"host-{i}") for i in range(count)
    ]
    return [am_payload(alerts[i : i + per_payload]) for i in range(0, count, per_payload)]


class Rig:
    def __init__(
        self,
        tmp_path: Path,
        redis_url: str,
        database_url: str,
        targets: list[FaultTarget],
        target_configs: list[dict[str, Any]] | None = None,
        **env: str,
    ) -> None:
        self.tmp_path = tmp_path
        self.targets = targets
        self.database_url = database_url
        targets_file = write_targets(
            tmp_path / "targets.yaml", target_configs or [webhook(t) for t in targets]
        )
        self.env = {
            **FAULT_ENV,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "PUBLISHING_TARGETS": str(targets_file),
            "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir()),
            **env,
        }
        self.settings = Settings.from_env(self.env)
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.fleet = Fleet(self.env, tmp_path)
        self.api: ApiThread | None = None
        self.senders: list[AlertSender] = []
        self.started = time.monotonic()

    def _metrics_dir(self) -> Path:
        path = self.tmp_path / "prometheus"
        path.mkdir(exist_ok=True)
        return path

    def start_api(self) -> AlertSender:
        self.api = ApiThread(self.settings)
        self.started = time.monotonic()
        return self.sender_for(self.api.url)

    def sender_for(self, url: str) -> AlertSender:
        sender = AlertSender(url)
        self.senders.append(sender)
        return sender

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """Every job a 202 named, from every sender."""
        return [job for sender in self.senders for job in sender.accepted]

    def delivered_count(self) -> int:
        return sum(len(t.delivered()) for t in self.targets)

    def accounted(self) -> bool:
        wanted = {j["id"] for j in self.jobs}
        done = {h.job_id for t in self.targets for h in t.delivered()}
        if not wanted - done:
            return True
        return not wanted - done - set(dlq_job_ids(self.database_url))

    def dlq_rows(self) -> list[dict[str, Any]]:
        return dlq_rows(self.database_url)

    def books(self, *, timeout_s: float = 60.0) -> Books:
        settled = settle(self.accounted, self.redis, timeout_s=timeout_s)
        books = check_books(
            self.jobs,
            [h for t in self.targets for h in t.snapshot()],
            dlq_job_ids(self.database_url),
            seconds=time.monotonic() - self.started,
        )
        if not settled:
            print(f"\nnot quiescent after {timeout_s} s: broker or books still moving")
        return books

    def tracked(self, job_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """What tracking says of these jobs (state, last error) and how the 202s named them
        (``duplicate``): the evidence for a lost one."""
        found: dict[str, dict[str, str]] = {}
        for job_id in job_ids:
            raw = self.redis.hgetall(f"{self.settings.key_prefix}:job:{job_id}")
            found[job_id] = {k.decode(): v.decode(errors="replace")[:300] for k, v in raw.items()}
            answers = [j for j in self.jobs if j["id"] == job_id]
            found[job_id]["202s"] = ", ".join(f"duplicate={j['duplicate']}" for j in answers)
        return found

    def whereabouts(self, job_ids: Iterable[str]) -> dict[str, list[str]]:
        """Where each job's message is on the broker (a queue, ``unacked`` with the age of its
        ``unacked_index`` entry on Redis's clock, parked) and the worker log lines naming it:
        the evidence for a lost job that tracking says is still waiting."""
        wanted = set(job_ids)
        found: dict[str, list[str]] = {job_id: [] for job_id in wanted}
        seconds, micros = self.redis.time()
        now = seconds + micros / 1_000_000
        for queue in QUEUES:
            for index, raw in enumerate(self.redis.lrange(queue, 0, -1)):
                job_id = message_id(raw)
                if job_id in found:
                    found[job_id].append(f"in queue {queue} at {index}")
        for tag, raw in self.redis.hgetall("unacked").items():
            job_id = message_id(raw)
            if job_id in found:
                score = self.redis.zscore("unacked_index", tag)
                age = "no unacked_index entry" if score is None else f"unacked_index age {now - score:.1f} s"
                found[job_id].append(f"in unacked, tag {tag!r}, {age}")
        parked = RedisParkingLot(self.redis, self.settings.key_prefix).parked_ids()
        for job_id in wanted & parked:
            found[job_id].append("parked")
        for path in sorted(self.tmp_path.glob("worker-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                for job_id in wanted:
                    if job_id in line:
                        found[job_id].append(f"{path.name}: {line[:300]}")
        alive = [
            w.log_path.name if w.log_path else "?"
            for w in self.fleet.workers
            if w.process is not None and w.process.poll() is None
        ]
        locks = {
            key: self.redis.pttl(key)
            for key in (f"{self.settings.key_prefix}:reconciler:lock", "unacked_mutex")
        }
        for lines in found.values():
            lines.append(f"lock time to live (ms): {locks}")
            lines.append(
                f"workers alive: {alive}; unacked {self.redis.hlen('unacked')}, "
                f"unacked_index {self.redis.zcard('unacked_index')}"
            )
        return found

    def resent_ids(self) -> list[str]:
        """The jobs the reconciler sent again, from the worker logs."""
        found = []
        for path in sorted(self.tmp_path.glob("worker-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                found += re.findall(r"job ([0-9a-f-]{36}): its message was in no queue", line)
        return found

    def close(self) -> None:
        for sender in self.senders:
            sender.close()
        if self.api is not None:
            self.api.close()
        self.fleet.close()
        self.redis.close()


class Supervisor:
    """Starts a worker again when its process has exited, every half second."""

    def __init__(self, rig: Rig, **worker: Any) -> None:
        """``worker``: how the workers it starts run (``concurrency``, ``pool``)."""
        self._rig = rig
        self._worker = {"concurrency": 4, **worker}
        self._stopping = threading.Event()
        self.restarts = 0
        self._replaced: set[int] = set()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for worker in list(self._rig.fleet.workers):
                if (
                    worker.process is not None
                    and worker.process.poll() is not None
                    and id(worker) not in self._replaced
                ):
                    self._replaced.add(id(worker))
                    self.restarts += 1
                    self._rig.fleet.start(f"w{len(self._rig.fleet.workers) + 1}", wait=False, **self._worker)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
