"""The product as a fault scenario runs it: the real API (``create_app``) in a thread, worker
processes, loopback targets, and the books at the end.

Retries are fast and the visibility timeout short (10 s), so the messages of a killed worker
come back within about 15 s (10 s plus a 5 s restore sweep).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis

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

    def close(self) -> None:
        for sender in self.senders:
            sender.close()
        if self.api is not None:
            self.api.close()
        self.fleet.close()
        self.redis.close()
