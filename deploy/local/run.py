"""``make run``: migrations, the API, workers and Flower in the foreground, with the
defaults; Ctrl-C (or SIGTERM) stops them all, letting workers finish and requeue their jobs.
``--demo`` adds local fake targets and a stream of sample alerts. Without
``PUBLISHING_API_TOKENS`` it makes an admin token for the run and keeps it in ``var/api-token``,
where the ``publishing`` command finds it."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

from publishing.errors import ConfigError
from publishing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Local state of a run: the SQLite DLQ by default, a private Redis's data, demo targets.
VAR = Path(os.environ.get("PUBLISHING_VAR_DIR") or ROOT / "var")


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def ensure_redis(settings: Settings, children: list[subprocess.Popen[bytes]]) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1)
    try:
        client.ping()
        say(f"Redis answers at {settings.redis_url}")
        return
    except redis.RedisError:
        pass
    parts = urlsplit(settings.redis_url)
    binary = shutil.which("redis-server")
    if binary is None or parts.hostname not in ("localhost", "127.0.0.1"):
        sys.exit(
            f"[run] nothing answers at REDIS_URL={settings.redis_url}. Start Redis "
            "(e.g. `apt-get install redis-server` or `docker run -p 6379:6379 redis:7`) or point REDIS_URL at one."
        )
    port = parts.port or 6379
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    say(
        f"nothing answers at {settings.redis_url}: starting a private redis-server on port {port} (data in {data})"
    )
    children.append(
        subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "",
             "--appendonly", "yes", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL,
        )
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.1)
    sys.exit("[run] the private redis-server did not start")


def write_secret(path: Path, text: str) -> None:
    """A file only its owner may read, from the moment it exists."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text + "\n")


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--demo", action="store_true", help="add fake targets and a stream of sample alerts")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("PUBLISHING_API_PORT", "8080")))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))
    args = parser.parse_args(argv)

    env = dict(os.environ)
    VAR.mkdir(exist_ok=True)
    demo = None
    if args.demo:
        from demo import DemoTargets

        demo = DemoTargets(VAR / "demo-targets.yaml")
        env["PUBLISHING_TARGETS"] = str(demo.targets_file)
        env.setdefault("PUBLISHING_BREAKER_OPEN_TIMEOUT_S", "10")
        env.setdefault("PUBLISHING_MAX_RETRIES", "3")
    token_file = VAR / "api-token"
    token_generated = not any(
        env.get(name, "").strip()
        for name in ("PUBLISHING_API_TOKENS", "PUBLISHING_API_TOKENS_FILE", "PUBLISHING_INSECURE_NO_AUTH")
    )
    if token_generated:
        # An admin token for this run, kept out of the terminal and the logs, like Flower's password.
        token = secrets.token_urlsafe(24)
        write_secret(token_file, token)
        env["PUBLISHING_API_TOKENS"] = f"admin:{token}"
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        sys.exit(f"[run] configuration error: {exc}")

    children: list[subprocess.Popen[bytes]] = []
    ensure_redis(settings, children)
    metrics_dir = Path(tempfile.mkdtemp(prefix="publishing-metrics-"))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    credentials = VAR / "flower-credentials"
    generated = "FLOWER_BASIC_AUTH" not in env
    if generated:
        # A password for this run, kept out of the terminal and the logs: read it from the file.
        env["FLOWER_BASIC_AUTH"] = f"admin:{secrets.token_urlsafe(12)}"
        write_secret(credentials, env["FLOWER_BASIC_AUTH"])
    env.setdefault("PUBLISHING_WORKER_METRICS_PORT", str(free_port(9808)))

    say("applying migrations (alembic upgrade head)")
    migrate = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env)
    if migrate.returncode != 0:
        sys.exit("[run] migrations failed; check DATABASE_URL")

    api_port, flower_port = free_port(args.api_port), free_port(args.flower_port)
    celery = [sys.executable, "-m", "celery", "-A", "workers.main"]
    processes = {
        "api": [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "2"],
        "worker-high": [*celery, "worker", "-Q", "high", "-c", "2", "-n", "high@%h", "--without-gossip"],
        "worker": [*celery, "worker", "-Q", "high,medium,low", "-c", "4", "-n", "general@%h", "--without-gossip"],
        "flower": [*celery, "flower", f"--port={flower_port}", "--address=127.0.0.1", "--max_tasks=10000"],
    }  # fmt: skip
    for name, command in processes.items():
        child_env = dict(env)
        if name == "worker-high":
            child_env["PUBLISHING_WORKER_METRICS_PORT"] = str(
                free_port(int(env["PUBLISHING_WORKER_METRICS_PORT"]) + 1)
            )
        if name in ("api", "flower"):
            child_env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"publishing-{name}-metrics-")
        children.append(subprocess.Popen(command, cwd=ROOT, env=child_env))

    user = env["FLOWER_BASIC_AUTH"].split(":", 1)[0]
    say(
        f"API      http://127.0.0.1:{api_port}  (health /readyz, metrics /metrics, docs /api/v2/openapi.json)"
    )
    say(f"webhook  http://127.0.0.1:{api_port}/webhook  (point Alertmanager here)")
    if token_generated:
        say(f"API token (admin) in {token_file}; the publishing command reads it from var/api-token")
    where = str(credentials) if generated else "FLOWER_BASIC_AUTH"
    say(f"Flower   http://127.0.0.1:{flower_port}  (user {user}; password in {where})")
    say(f"worker metrics http://127.0.0.1:{env['PUBLISHING_WORKER_METRICS_PORT']}/metrics")
    if not settings.targets_path:
        say("no PUBLISHING_TARGETS set: alerts will be accepted but routed nowhere (see README)")
    say("Ctrl-C stops everything")

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if demo is not None:
        # The demo's alerts need a token that may submit: this run's, or one the user gave.
        sender = next((t for t, role in settings.api_tokens.items() if role in ("operator", "admin")), None)
        demo.start(f"http://127.0.0.1:{api_port}", token=sender)
    while not stopping:
        if any(c.poll() is not None for c in children):
            say("a process exited; stopping the rest")
            break
        time.sleep(0.5)
    if demo is not None:
        demo.stop()
    say("stopping: workers finish their current jobs and return the rest to the queues")
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in reversed(children):
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
