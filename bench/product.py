"""The product as an operator starts it, on a run's private Redis and DLQ database: the API
under gunicorn and ``celery -A workers.main worker`` pools, plus read access to what it keeps
in Redis (job tracking, breakers, queues)."""

from __future__ import annotations

import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.processes import Proc, Supervisor, free_port, wait_until
from bench.services import RedisServer

KEY_PREFIX = "publishing"


def webhook_target(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "webhook", "format": "webhook", "url": url, **extra}


class Product:
    def __init__(
        self,
        supervisor: Supervisor,
        run_dir: Path,
        redis: RedisServer,
        database_url: str,
        targets: list[dict[str, Any]],
        env: dict[str, str] | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._run_dir = run_dir
        self.redis = redis
        targets_file = run_dir / "targets.yaml"
        targets_file.write_text(yaml.safe_dump({"targets": targets}))
        self.env = {
            "REDIS_URL": redis.url,
            "DATABASE_URL": database_url,
            "PUBLISHING_TARGETS": str(targets_file),
            # Keep every job of a run in tracking: latencies are read from it afterwards.
            "PUBLISHING_TRACKING_CAPACITY": "500000",
            "PUBLISHING_KEY_PREFIX": KEY_PREFIX,
            # The benchmark's API is on loopback and sends no token.
            "PUBLISHING_INSECURE_NO_AUTH": "1",
            **(env or {}),
        }
        self.api_url = ""
        self.api: Proc | None = None
        self.workers: list[Proc] = []

    def _metrics_dir(self, name: str) -> str:
        return tempfile.mkdtemp(prefix=f"metrics-{name}-", dir=self._run_dir)

    def start_api(self, workers: int = 2, extra_env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        self.api = self._supervisor.start(
            "api",
            [
                sys.executable, "-m", "gunicorn", "api.wsgi:app", "-b", f"127.0.0.1:{port}",
                "-w", str(workers), "--timeout", "60", "--graceful-timeout", "5",
            ],
            env={**self.env, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir("api"), **(extra_env or {})},
        )  # fmt: skip
        self.api_url = f"http://127.0.0.1:{port}"
        api = self.api

        def healthy() -> bool:
            if not api.alive():
                raise RuntimeError(f"the API exited; see {api.log_path}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(healthy, 60, "the API to answer /healthz", interval_s=0.2)
        return api

    def start_worker(
        self,
        name: str,
        queues: str = "high,medium,low",
        concurrency: int = 4,
        extra_env: dict[str, str] | None = None,
        wait_ready: bool = True,
        pool: str = "prefork",
    ) -> Proc:
        proc = self._supervisor.start(
            f"worker-{name}",
            [
                sys.executable, "-m", "celery", "-A", "workers.main", "worker", "-Q", queues,
                "-c", str(concurrency), "-P", pool, "-n", f"{name}@%h",
                "--without-gossip", "--without-mingle", "--loglevel", "INFO",
            ],
            env={**self.env, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir(name), **(extra_env or {})},
        )  # fmt: skip
        if wait_ready:
            proc.wait_for_log("ready.", 60)
        self.workers.append(proc)
        return proc

    def start_fleet(
        self, general_concurrency: int = 4, high_concurrency: int = 2, pool: str = "prefork"
    ) -> list[Proc]:
        """As ``make run`` and deploy/compose.yaml run it: a dedicated ``-Q high`` pool and a
        general pool on every queue (as shipped: gevent, ``-c 100`` and ``-c 50``)."""
        return [
            self.start_worker("high", "high", high_concurrency, pool=pool),
            self.start_worker("general", "high,medium,low", general_concurrency, pool=pool),
        ]

    def tracking(self, job_ids: list[str], *fields: str) -> dict[str, list[str | None]]:
        """The given tracking fields of each job (``<prefix>:job:<id>``), as text."""
        client = self.redis.client
        out: dict[str, list[str | None]] = {}
        for start in range(0, len(job_ids), 2000):
            chunk = job_ids[start : start + 2000]
            pipe = client.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hmget(f"{KEY_PREFIX}:job:{job_id}", list(fields))
            for job_id, row in zip(chunk, pipe.execute(), strict=True):
                out[job_id] = [v.decode() if isinstance(v, bytes) else None for v in row]
        return out

    def submitted_at(self, job_ids: list[str]) -> dict[str, float]:
        rows = self.tracking(job_ids, "submitted_at")
        return {job_id: float(row[0]) for job_id, row in rows.items() if row[0]}

    def breaker_state(self, target: str) -> str:
        raw = self.redis.client.hget(f"{KEY_PREFIX}:breaker:{{{target}}}", "state")
        return raw.decode() if isinstance(raw, bytes) else "closed"

    def queue_depths(self) -> dict[str, int]:
        pipe = self.redis.client.pipeline(transaction=False)
        for queue in ("high", "medium", "low"):
            pipe.llen(queue)
        return dict(zip(("high", "medium", "low"), (int(n) for n in pipe.execute()), strict=True))
