"""Nothing leaked (docs/design.md (Targets and payloads): secrets never appear in task arguments, logs, API responses, DLQ
rows, tracking entries or Flower).

Targets carry recognisable secrets of every kind: a PagerDuty routing key, a webhook bearer
token, signing secret and credential-like header, a basic-auth password, Slack webhook URLs
(the path is the secret, the host is not), a webhook URL with a token in its path and a
signature in its query, and a Rootly API token. The targets echo what they
receive back in their error bodies, as some providers do. Every path is driven: delivery,
retries, permanent failures, an open breaker and deferral, the DLQ, replays through the API,
API errors, test alerts, and every read endpoint; then every response body, every log line
(worker and API, at DEBUG), every DLQ row, every Redis key (tracking hashes, breaker state and
every broker message, decoded), Flower's task list and every /metrics page are searched for
the secrets. Zero hits allowed.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sqlalchemy as sa

from tests.faults.rig import Rig, am_alert, am_payload
from tests.support.alert_api import AlertSender, GunicornApi
from tests.support.books import broker_busy, dlq_rows
from tests.support.fault_target import FaultTarget, Hit
from tests.support.fleet import ROOT, wait_until
from tests.support.http_target import Reply
from tests.support.private_services import PrivateRedis, free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

PD_KEY = "pdkey-LEAK-R0UT1NG-7f3a9c"
BEARER = "bearer-LEAK-T0KEN-51d2e8"
SIGNING_RAW = b"LEAK-signing-secret-0xd1"
SIGNING = "whsec_" + base64.b64encode(SIGNING_RAW).decode()
HEADER_SECRET = "hdr-LEAK-APIKEY-8812"
BASIC_USER, BASIC_PW = "ops", "basic-LEAK-PASSW0RD-93be"
ROOTLY_TOKEN = "rootly-LEAK-AP1T0KEN-c0ffee"
SLACK_TOKEN = "SLACKLEAKxoxb93F2a"
SLACK_PATH = f"/services/T0LEAK1/B0LEAK2/{SLACK_TOKEN}"
SLACK_DOWN_TOKEN = "SLACKDOWNLEAKq77Zk"
SLACK_DOWN_PATH = f"/services/T0LEAK3/B0LEAK4/{SLACK_DOWN_TOKEN}"
DOWN_BEARER = "bearer-LEAK-DOWN-0c4f11"
# A generic incoming webhook with its credential in the path and the query, as Teams, Discord
# and Google Chat have it.
HOOK_PATH_TOKEN = "HOOKLEAKpathT0KEN4e1d"
HOOK_QUERY_SIG = "HOOKLEAKqueryS1G9c2b"
HOOK_PATH = f"/webhooks/774411/{HOOK_PATH_TOKEN}?sig={HOOK_QUERY_SIG}"
ADMIN_TOKEN = "admin-LEAK-API-T0KEN-5a5a5a5a"
WRONG_TOKEN = "wrong-LEAK-API-T0KEN-6b6b6b6b"
FLOWER_AUTH = ("flower", "flower-test-password")
# Connection passwords: Redis runs with requirepass, the database URL carries a password.
REDIS_PW = "redis-LEAK-REQUIREPASS-3e3e3e"
DB_PW = "db-LEAK-PASSW0RD-4f4f4f"

NEEDLES = {
    "pagerduty routing_key": PD_KEY,
    "webhook bearer_token": BEARER,
    "webhook signing_secret": SIGNING,
    "signing secret, base64 part": SIGNING.removeprefix("whsec_"),
    "credential header value": HEADER_SECRET,
    "basic_auth password": BASIC_PW,
    "basic_auth header": base64.b64encode(f"{BASIC_USER}:{BASIC_PW}".encode()).decode(),
    "rootly api_token": ROOTLY_TOKEN,
    "slack webhook path": SLACK_PATH,
    "slack webhook token": SLACK_TOKEN,
    "slack webhook ids": "T0LEAK1/B0LEAK2",
    "down slack webhook token": SLACK_DOWN_TOKEN,
    "down slack webhook ids": "T0LEAK3/B0LEAK4",
    "down webhook bearer_token": DOWN_BEARER,
    "webhook URL path and query": HOOK_PATH,
    "webhook URL path token": HOOK_PATH_TOKEN,
    "webhook URL query signature": HOOK_QUERY_SIG,
    "webhook URL path": "webhooks/774411",
    "API admin token": ADMIN_TOKEN,
    "Redis password": REDIS_PW,
    "database password": DB_PW,
    "API token presented by a wrong caller": WRONG_TOKEN,
}


class Echo:
    """Answers like a provider that echoes the request in its errors: ``Reject*`` alerts get a
    400, ``Retry*`` alerts a 503 on their first attempt, both with every header and the body in
    the reply; anything else a 200."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.healthy = False

    def __call__(self, hit: Hit) -> Reply:
        echo = json.dumps(
            {"path": hit.path, "headers": hit.headers, "body": hit.body.decode(errors="replace")}
        )
        with self._lock:
            first = hit.job_id not in self._seen
            self._seen.add(hit.job_id or "")
        if self.healthy:
            return Reply(200)
        if b"Reject" in hit.body:
            return Reply(400, body=echo)
        if b"Retry" in hit.body and first:
            return Reply(503, body=echo)
        return Reply(200)


@pytest.fixture
def targets() -> Iterator[dict[str, FaultTarget]]:
    echo = Echo()
    servers = {name: FaultTarget(name, echo) for name in ("pd", "hook", "hook-basic", "slack", "rootly")}
    servers["hook-down"] = FaultTarget("hook-down", Reply(503, body=json.dumps({"token": DOWN_BEARER})))
    yield servers
    for server in servers.values():
        server.stop()


def _configs(servers: dict[str, FaultTarget]) -> list[dict[str, Any]]:
    closed = f"http://127.0.0.1:{free_port()}"
    return [
        {"name": "pd", "type": "pagerduty", "url": servers["pd"].url + "/v2/enqueue", "routing_key": PD_KEY,
         "rate_limit": False},
        {"name": "hook", "type": "webhook", "url": servers["hook"].url + HOOK_PATH, "bearer_token": BEARER,
         "signing_secret": SIGNING, "headers": {"X-Api-Key": HEADER_SECRET, "X-Team": "ops"}},
        {"name": "hook-basic", "type": "webhook", "format": "alertmanager", "url": servers["hook-basic"].url,
         "basic_auth": {"username": BASIC_USER, "password": BASIC_PW}},
        {"name": "slack", "type": "slack", "url": servers["slack"].url + SLACK_PATH, "rate_limit": False},
        {"name": "rootly", "type": "rootly", "url": servers["rootly"].url + "/v1/alerts",
         "api_token": ROOTLY_TOKEN},
        {"name": "slack-down", "type": "slack", "url": closed + SLACK_DOWN_PATH, "rate_limit": False},
        {"name": "hook-down", "type": "webhook", "url": servers["hook-down"].url + "/x",
         "bearer_token": DOWN_BEARER},
    ]  # fmt: skip


class Corpus:
    """Everything the product showed anyone, by where it was seen."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        self.texts.append((where, text))

    def hits(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for name, needle in NEEDLES.items():
                at = text.find(needle)
                if at >= 0:
                    found.append(
                        f"{name} in {where}: ...{text[max(0, at - 80) : at + len(needle) + 40]!r}..."
                    )
        return found


class Api:
    def __init__(self, url: str, corpus: Corpus) -> None:
        self.url = url
        self.corpus = corpus
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, self.url + path, timeout=15, **kwargs)
        self.corpus.add(f"API {method} {path} -> {response.status_code}", response.text)
        for name, value in response.headers.items():
            self.corpus.add(f"API {method} {path} header {name}", value)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def read_everything(self, job_ids: list[str]) -> None:
        for path in (
            "/healthz", "/readyz", "/metrics", "/api/v2/openapi.json",
            "/api/v2/publishing/targets", "/api/v2/publishing/breakers",
            "/api/v2/publishing/queue/status", "/api/v2/publishing/queue/stats",
            "/api/v2/publishing/jobs?limit=1000", "/api/v2/publishing/dlq?limit=1000",
            "/api/v2/publishing/dlq/stats",
        ):  # fmt: skip
            self.get(path)
        for name in ("pd", "hook", "hook-basic", "slack", "rootly", "slack-down", "hook-down"):
            self.get(f"/api/v2/publishing/targets/{name}")
        for job_id in job_ids:
            self.get(f"/api/v2/publishing/jobs/{job_id}")
        for entry in self.get("/api/v2/publishing/dlq?limit=1000").json().get("entries", []):
            self.get(f"/api/v2/publishing/dlq/{entry['id']}")


def _redis_dump(client: redis.Redis, corpus: Corpus, when: str) -> None:
    """Every key of the test's Redis database; broker messages with their bodies decoded."""
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "hash":
            values = [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        for value in values:
            corpus.add(f"Redis ({when}) {kind} {key.decode(errors='replace')}", value)
            corpus.add(f"Redis ({when}) {kind} {key.decode(errors='replace')} (decoded)", _decoded(value))


def _decoded(value: bytes) -> str:
    """A kombu message (or an ``unacked`` entry holding one) with its base64 body decoded."""
    text = value if value.startswith(b"{") else value.split(b"=", 1)[-1]
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    message = data[0] if isinstance(data, list) and data else data
    if not isinstance(message, dict) or "body" not in message:
        return ""
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode(errors="replace")
    return json.dumps(message.get("headers", {})) + str(body)


def _flower(env: dict[str, str], port: int, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.main", "flower", f"--port={port}",
         "--address=127.0.0.1", "--max_tasks=1000"],
        cwd=ROOT,
        env={**os.environ, **env, "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.fixture
def passworded_redis() -> Iterator[str]:
    """A private redis-server that wants a password, as a fleet's does."""
    server = PrivateRedis(appendonly=False, extra=("--requirepass", REDIS_PW))
    server.start()
    yield f"redis://:{REDIS_PW}@127.0.0.1:{server.port}/0"
    server.destroy()


def _with_password(database_url: str) -> str:
    """The test database's URL with a password in it (the server's trust auth ignores it, so
    only where the URL shows up can it leak)."""
    return sa.make_url(database_url).set(password=DB_PW).render_as_string(hide_password=False)


def _celery(env: dict[str, str], *args: str) -> str:
    """What an operator sees from ``celery inspect ...``: stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.main", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_no_secret_shows_anywhere_after_every_path(
    targets: dict[str, FaultTarget], passworded_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    worker_metrics_port = free_port()
    database_url = _with_password(dlq_database_url)
    rig = Rig(
        tmp_path,
        passworded_redis,
        database_url,
        list(targets.values()),
        _configs(targets),
        PUBLISHING_LOG_LEVEL="DEBUG",
        PUBLISHING_MAX_RETRIES="2",
        PUBLISHING_BREAKER_FAILURE_THRESHOLD="3",
        PUBLISHING_BREAKER_MAX_DEFERRAL_S="4",
        PUBLISHING_API_TOKENS=f"admin:{ADMIN_TOKEN}",
        PUBLISHING_WORKER_METRICS_PORT=str(worker_metrics_port),
    )
    corpus = Corpus()
    flower_port = free_port()
    flower_log = open(tmp_path / "flower.log", "wb")  # noqa: SIM115
    flower = _flower(rig.env, flower_port, flower_log)
    api_process = GunicornApi(rig.env, tmp_path / "api.log", workers=1)
    echo = targets["pd"]._responder
    try:
        flower_url = f"http://127.0.0.1:{flower_port}"
        wait_until(lambda: _answers(flower_url + "/healthcheck"), 30, 0.2)
        rig.fleet.start("w1", concurrency=4)
        api_process.wait_ready()
        api = Api(api_process.url, corpus)
        sender = AlertSender(api_process.url, token=ADMIN_TOKEN)
        rig.senders.append(sender)

        # Delivery, retries, permanent failures, a dead target (refused) and a sick one (503).
        names = ["OkDisk", "OkCpu", "RetryNet", "RejectBad"]
        sender.send(am_payload([am_alert(n, instance=f"i-{n}") for n in names]))
        wait_until(lambda: b"open" in (rig.redis.hget("publishing:breaker:{hook-down}", "state") or b""), 30)
        # While the breaker is open and jobs are deferred or held as retries: every view.
        api.read_everything([j["id"] for j in rig.jobs])
        _redis_dump(rig.redis, corpus, "mid-flight")

        # API errors, with a wrong token and with bad input; test alerts to every target.
        bad = requests.post(
            api.url + "/webhook", json={}, headers={"Authorization": f"Bearer {WRONG_TOKEN}"}, timeout=5
        )
        corpus.add("API POST /webhook with a wrong token", bad.text)
        api.post("/webhook", json={"alerts": [{"labels": {}}]})
        api.post("/webhook", data=b"{not json", headers={"Content-Type": "application/json"})
        api.post("/api/v2/publishing/submit", json={"alert": {"status": "firing"}, "targets": ["nope"]})
        api.call("DELETE", "/api/v2/publishing/targets")
        for name in ("pd", "hook", "hook-basic", "slack", "rootly", "slack-down", "hook-down", "nope"):
            api.post(f"/api/v2/publishing/targets/{name}/test")
        test_jobs = [
            r.json()["job_id"]
            for r in (api.post(f"/api/v2/publishing/targets/{n}/test") for n in ("hook", "slack"))
            if r.status_code == 202
        ]

        wait_until(lambda: broker_busy(rig.redis) == 0, 60, 0.2)
        api.read_everything([j["id"] for j in rig.jobs] + test_jobs)

        # Replays through the API: every row once (the echoing targets now healthy), a second
        # time (409), a bulk dry run, then a breaker reset.
        echo.healthy = True  # type: ignore[attr-defined]
        entries = api.get("/api/v2/publishing/dlq?limit=1000").json()["entries"]
        assert entries, "nothing was dead-lettered: the DLQ paths were not driven"
        for entry in entries:
            api.post(f"/api/v2/publishing/dlq/{entry['id']}/replay")
        api.post(f"/api/v2/publishing/dlq/{entries[0]['id']}/replay")
        api.post("/api/v2/publishing/dlq/replay", json={"dry_run": True})
        api.post("/api/v2/publishing/breakers/hook-down/reset")
        time.sleep(1)
        wait_until(lambda: broker_busy(rig.redis) == 0, 60, 0.2)
        api.read_everything([j["id"] for j in rig.jobs] + test_jobs)

        # Flower: the task list and each task, as an operator sees them.
        tasks = requests.get(flower_url + "/api/tasks", auth=FLOWER_AUTH, timeout=10)
        corpus.add("Flower /api/tasks", tasks.text)
        assert tasks.status_code == 200 and tasks.json(), "Flower saw no task"
        for task_id in list(tasks.json())[:40]:
            info = requests.get(f"{flower_url}/api/task/info/{task_id}", auth=FLOWER_AUTH, timeout=10)
            corpus.add(f"Flower task {task_id}", info.text)
        workers = requests.get(flower_url + "/api/workers?refresh=1", auth=FLOWER_AUTH, timeout=30)
        assert workers.status_code == 200 and workers.json(), "Flower saw no worker"
        corpus.add("Flower /api/workers?refresh=1", workers.text)
        for page in ("/metrics", "/tasks", "/workers", *(f"/worker/{name}" for name in workers.json())):
            corpus.add(f"Flower {page}", requests.get(flower_url + page, auth=FLOWER_AUTH, timeout=30).text)
        # What `celery inspect conf` and `report` show an operator.
        conf = _celery(rig.env, "inspect", "conf", "--timeout=10")
        assert "broker_transport_options" in conf, conf[-2000:]
        corpus.add("celery inspect conf", conf)
        report = _celery(rig.env, "inspect", "report", "--timeout=10")
        assert "software" in report, report[-2000:]
        corpus.add("celery inspect report", report)
        corpus.add(
            "worker /metrics", requests.get(f"http://127.0.0.1:{worker_metrics_port}/metrics", timeout=5).text
        )

        _redis_dump(rig.redis, corpus, "at the end")
        for row in dlq_rows(database_url):
            corpus.add(f"DLQ row {row['id']}", json.dumps(row, default=str))
        api_process.close()
        corpus.add("API log (gunicorn, api.wsgi)", (tmp_path / "api.log").read_bytes())
        rig.fleet.stop_all()
        corpus.add("worker logs at DEBUG", rig.fleet.logs())
        corpus.add("Flower log", (tmp_path / "flower.log").read_bytes())

        # The test drove what it claims to have driven, with the secrets really in use.
        sent = "".join(
            h.path + json.dumps(h.headers) + h.body.decode(errors="replace")
            for t in targets.values()
            for h in t.snapshot()
        )
        in_use = [
            PD_KEY,
            BEARER,
            HEADER_SECRET,
            NEEDLES["basic_auth header"],
            ROOTLY_TOKEN,
            SLACK_PATH,
            HOOK_PATH,
        ]
        assert all(secret in sent for secret in in_use), "a secret never reached its target"
        assert any("(decoded)" in where and "job_id" in text for where, text in corpus.texts)
        logs = rig.fleet.logs()
        assert '"level": "debug"' in logs
        assert "dead-lettered" in logs and "retry" in logs
        assert any(h.status == 400 for t in targets.values() for h in t.snapshot())
        assert len(dlq_rows(database_url)) >= len(entries)
        hits = corpus.hits()
        print(
            f"\nsearched {len(corpus.texts)} texts ({sum(len(t) for _, t in corpus.texts)} chars): {len(hits)} hits"
        )
        assert not hits, "secrets leaked:\n" + "\n".join(hits[:40])
    finally:
        api_process.close()
        flower.terminate()
        flower.wait(10)
        flower_log.close()
        rig.close()
