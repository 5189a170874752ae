"""``make run``: migrations, the API, workers and Flower in the foreground, with the
defaults; Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) stops them all, letting
workers finish and requeue their jobs, and a supervisor killed outright takes its processes
with it. ``--demo`` adds local fake targets and a stream of sample alerts, in a Redis database
of its own. Without ``PUBLISHING_API_TOKENS`` it makes an admin token for the run and keeps it
in ``var/api-token``, where the ``publishing`` command finds it."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from publishing.adapters.target_files import check_targets
from publishing.errors import ConfigError
from publishing.settings import Settings, redact_url, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
# Local state of a run: the SQLite DLQ by default, a private Redis's data, demo targets.
VAR = Path(os.environ.get("PUBLISHING_VAR_DIR") or ROOT / "var")
# The demo's jobs, breakers and queues live in a database of their own (the broker's lists are
# named high/medium/low whatever the key prefix), so stopping a demo leaves nothing for the next
# ``make run`` to deliver to targets it does not know.
DEMO_REDIS_DB = 15
DEMO_KEY_PREFIX = "publishing-demo"
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


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
        spawn(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "",
             "--appendonly", "yes", "--maxmemory-policy", "noeviction"],
            dict(os.environ),
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


def port_holder(port: int) -> str | None:
    """Who listens on ``port``: the process found through ``/proc/net/tcp*`` and ``/proc/*/fd``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local address "0100007F:1F90", state 0A (LISTEN), inode in the tenth column
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            pid = fd.parts[2]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                command = "?"
            return f"pid {pid} ({command[:100]})"
    return "a process of another user"


def claim_port(port: int, variable: str) -> int:
    """``port`` if a server may listen on it, as gunicorn, Flower and the metrics server do
    (with SO_REUSEADDR, so connections of an earlier run in TIME-WAIT do not count), else stop
    with a line naming the port and who holds it. Never another port: the documented one is
    what the user's Alertmanager and bookmarks point at."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return port
        except OSError as exc:
            reason = exc.strerror
    holder = port_holder(port) or f"another process ({reason}; `ss -ltnp 'sport = :{port}'` shows it)"
    sys.exit(f"[run] port {port} is in use by {holder}: stop it, or set {variable} to another port")


def demo_redis_url(url: str) -> str:
    """The demo's Redis: the same server, database ``DEMO_REDIS_DB``."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url  # Sentinel or a socket: the key prefix alone keeps the demo apart
    return urlunsplit(parts._replace(path=f"/{DEMO_REDIS_DB}"))


def _die_with_parent(parent: int) -> None:
    """In each child before exec: its own process group, and SIGTERM when the supervisor dies
    (even by SIGKILL), so no API or worker outlives ``make run``."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before prctl
        os._exit(1)


def spawn(command: list[str], env: dict[str, str], **options: object) -> subprocess.Popen[bytes]:
    parent = os.getpid()
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        command, cwd=ROOT, env=env, process_group=0, preexec_fn=lambda: _die_with_parent(parent), **options
    )


def answers(url: str, auth: tuple[str, str] | None = None) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1, auth=auth).status_code == 200
    except requests.RequestException:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--demo", action="store_true", help="add fake targets and a stream of sample alerts")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("PUBLISHING_API_PORT", "8080")))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))
    args = parser.parse_args(argv)

    env = dict(os.environ)
    if env.get("PUBLISHING_TARGETS", "").strip():
        # The processes run from the repository: a path relative to where make ran must hold there.
        env["PUBLISHING_TARGETS"] = str(Path(env["PUBLISHING_TARGETS"].strip()).resolve())
    # The default DLQ is the SQLite file in this run's var/.
    env.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'publishing.db'}")
    for line in unknown_variables(env):
        say(f"WARNING: {line}")
    VAR.mkdir(exist_ok=True)
    demo = None
    if args.demo:
        from demo import DemoTargets

        demo = DemoTargets(VAR / "demo-targets.yaml")
        env["PUBLISHING_TARGETS"] = str(demo.targets_file)
        env["REDIS_URL"] = demo_redis_url(env.get("REDIS_URL") or "redis://localhost:6379/0")
        env["PUBLISHING_KEY_PREFIX"] = DEMO_KEY_PREFIX
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
        # Every process would refuse a bad targets file; say it once, before starting any.
        check_targets(settings.targets_path)
    except ConfigError as exc:
        sys.exit(f"[run] configuration error: {exc}")

    # Each port as documented, or a stop naming who holds it (before anything starts).
    api_port = claim_port(args.api_port, "PUBLISHING_API_PORT")
    flower_port = claim_port(args.flower_port, "FLOWER_PORT")
    metrics_port = claim_port(
        int(env.get("PUBLISHING_WORKER_METRICS_PORT") or 9808), "PUBLISHING_WORKER_METRICS_PORT"
    )
    high_metrics_port = claim_port(metrics_port + 1, "PUBLISHING_WORKER_METRICS_PORT (and the port after it)")
    env["PUBLISHING_WORKER_METRICS_PORT"] = str(metrics_port)

    services: list[subprocess.Popen[bytes]] = []  # a private Redis, stopped last
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    # A closed terminal (SIGHUP) stops the run like Ctrl-C; the children, each in a process
    # group of its own, get no signal from the terminal, only the supervisor's SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        return _run(args, env, settings, demo, services, children, stopping, token_file, token_generated,
                    (api_port, flower_port, metrics_port, high_metrics_port))  # fmt: skip
    finally:
        if children or services:
            say("stopping: workers finish their current jobs and return the rest to the queues")
        _stop_all(children)
        _stop_all(services)
        say("stopped")


def _run(
    args: argparse.Namespace,
    env: dict[str, str],
    settings: Settings,
    demo: object,
    services: list[subprocess.Popen[bytes]],
    children: list[subprocess.Popen[bytes]],
    stopping: list[int],
    token_file: Path,
    token_generated: bool,
    ports: tuple[int, int, int, int],
) -> int:
    api_port, flower_port, metrics_port, high_metrics_port = ports
    ensure_redis(settings, services)
    metrics_dir = Path(tempfile.mkdtemp(prefix="publishing-metrics-"))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    credentials = VAR / "flower-credentials"
    generated = "FLOWER_BASIC_AUTH" not in env
    if generated:
        # A password for this run, kept out of the terminal and the logs: read it from the file.
        env["FLOWER_BASIC_AUTH"] = f"admin:{secrets.token_urlsafe(12)}"
        write_secret(credentials, env["FLOWER_BASIC_AUTH"])

    say("applying migrations (alembic upgrade head)")
    migrate = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env)
    if migrate.returncode != 0:
        sys.exit("[run] migrations failed; check DATABASE_URL")

    celery = [sys.executable, "-m", "celery", "-A", "workers.main"]
    processes = {
        "api": [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "2"],
        "worker-high": [*celery, "worker", "-Q", "high", "-P", "gevent", "-c", "50", "-n", "high@%h", "--without-gossip"],
        "worker": [*celery, "worker", "-Q", "high,medium,low", "-P", "gevent", "-c", "100", "-n", "general@%h", "--without-gossip"],
        "flower": [*celery, "flower", f"--port={flower_port}", "--address=127.0.0.1", "--max_tasks=10000"],
    }  # fmt: skip
    flower_env: dict[str, str] = {}
    for name, command in processes.items():
        child_env = dict(env)
        if name == "worker-high":
            child_env["PUBLISHING_WORKER_METRICS_PORT"] = str(high_metrics_port)
        if name in ("api", "flower"):
            child_env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"publishing-{name}-metrics-")
        if name == "flower":
            flower_env = child_env  # started once the workers answer, so it finds them at once
        else:
            children.append(spawn(command, child_env))

    user = env["FLOWER_BASIC_AUTH"].partition(":")[0]
    say(
        f"API      http://127.0.0.1:{api_port}  (health /readyz, metrics /metrics, docs /api/v2/openapi.json)"
    )
    say(f"webhook  http://127.0.0.1:{api_port}/webhook  (point Alertmanager here)")
    if token_generated:
        say(f"API token (admin) in {token_file}; the publishing command reads it from var/api-token")
    where = str(VAR / "flower-credentials") if generated else "FLOWER_BASIC_AUTH"
    say(f"Flower   http://127.0.0.1:{flower_port}  (user {user}; password in {where})")
    say(f"worker metrics http://127.0.0.1:{metrics_port}/metrics")
    if args.demo:
        say(f"demo: Redis database {DEMO_REDIS_DB} ({redact_url(env['REDIS_URL'])}), apart from make run's")
    if not settings.targets_path:
        say("no PUBLISHING_TARGETS set: alerts will be accepted but routed nowhere (see README)")

    workers_answer = _workers_answer(settings, 2)
    flower_started: list[subprocess.Popen[bytes]] = []

    def workers_then_flower() -> bool:
        if not workers_answer():
            return False
        if not flower_started:
            flower_started.append(spawn(processes["flower"], flower_env))
            children.append(flower_started[0])
        return True

    checks = {
        "API": lambda: answers(f"http://127.0.0.1:{api_port}/readyz"),
        "workers": workers_then_flower,
        "Flower": lambda: bool(flower_started) and answers(f"http://127.0.0.1:{flower_port}/healthcheck"),
    }
    waiting = dict(checks)
    deadline = time.monotonic() + 120
    while waiting and not stopping:
        if any(c.poll() is not None for c in children + services):
            say("a process exited before the run was ready; stopping the rest")
            return 1
        if time.monotonic() > deadline:
            say(f"not ready after 120 s: {', '.join(waiting)} did not answer; stopping")
            return 1
        waiting = {name: check for name, check in waiting.items() if not check()}
        time.sleep(0.3)
    if not stopping:
        say(
            f"ready: API on http://127.0.0.1:{api_port}, 2 workers, Flower on http://127.0.0.1:{flower_port}; Ctrl-C stops everything"
        )
        if demo is not None:
            # The demo's alerts need a token that may submit: this run's, or one the user gave.
            sender = next(
                (t for t, role in settings.api_tokens.items() if role in ("operator", "admin")), None
            )
            demo.start(f"http://127.0.0.1:{api_port}", token=sender)  # type: ignore[attr-defined]
    status = 0
    while not stopping:
        if any(c.poll() is not None for c in children + services):
            say("a process exited; stopping the rest")
            status = 1
            break
        time.sleep(0.5)
    if demo is not None:
        demo.stop()  # type: ignore[attr-defined]
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _workers_answer(settings: Settings, count: int) -> Callable[[], bool]:
    """Whether ``count`` workers answer a ping over the broker."""
    from workers.celery_app import create_celery_app

    app = create_celery_app(settings)

    def check() -> bool:
        try:
            return len(app.control.ping(timeout=0.5)) >= count
        except Exception:  # the broker not there yet, for a ping that is only a probe
            return False

    return check


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process (workers finish their jobs), then, its leader gone or 30 s up,
    SIGKILL whatever is left of its process group."""
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in reversed(children):
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


if __name__ == "__main__":
    sys.exit(main())
