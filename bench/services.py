"""What a run needs around the product: a private ``redis-server`` on a free loopback port
(never the shared one), a private DLQ database (a fresh PostgreSQL database on the local
server, else an SQLite file) migrated with Alembic, and the loopback sink."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from bench.processes import ROOT, Supervisor, free_port, wait_until
from bench.sink import SinkClient

POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


class RedisServer:
    """``redis-server`` as the fleet runs it (AOF every second, noeviction), private to a run."""

    def __init__(self, supervisor: Supervisor, data_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = supervisor.start(
            "redis",
            [
                binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(data_dir),
                "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                "--maxmemory-policy", "noeviction", "--protected-mode", "yes",
            ],
        )  # fmt: skip
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)
        wait_until(self._ping, 15, "private redis-server to answer")

    def _ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        # Our own server: nobody else's data lives here.
        self.client.flushall()

    def command_counts(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def version(self) -> str:
        return str(self.client.info("server").get("redis_version", "?"))


def command_delta(before: dict[str, int], after: dict[str, int], per: int) -> dict[str, Any]:
    """Redis commands run between two readings, in total and per job, busiest first."""
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    delta = {k: v for k, v in delta.items() if v > 0}
    total = sum(delta.values())
    return {
        "total": total,
        "per_job": round(total / per, 2) if per else None,
        "by_command_per_job": {
            k: round(v / per, 2) for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if per
        },
    }


@contextmanager
def dlq_database(run_dir: Path) -> Iterator[str]:
    """A migrated, empty DLQ database for this run, dropped afterwards."""
    name = f"publishing_bench_{uuid.uuid4().hex[:10]}"
    admin: sa.Engine | None = None
    try:
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    except sa.exc.OperationalError:
        admin = None
        url = f"sqlite:///{run_dir / 'dlq.db'}"
    try:
        migrate(url)
        yield url
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def migrate(url: str) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed: {result.stderr[-2000:]}")


def dlq_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM publishing_dlq")).scalar_one())
    finally:
        engine.dispose()


def start_sink(supervisor: Supervisor, run_dir: Path, slow_s: float = 1.0) -> SinkClient:
    ports_file = run_dir / "sink-ports.json"
    ports_file.unlink(missing_ok=True)
    proc = supervisor.start(
        "sink", [sys.executable, "-m", "bench.sink", "--ports-file", str(ports_file), "--slow-s", str(slow_s)]
    )

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"the sink exited; see {proc.log_path}")
        return ports_file.exists()

    wait_until(ready, 15, "the sink to listen")
    ports = json.loads(ports_file.read_text())
    return SinkClient(int(ports["port"]), int(ports["outage_port"]), proc.pid)
