"""Whatever ``/webhook`` and ``/submit`` accept is delivered or dead-lettered: never lost, never
looping, never fatal to a worker. Bodies are generated within the ingest caps
(``publishing.alert.FieldLimits``: deep-but-allowed metadata, any Unicode, big labels), go
through a real worker (prefork, and a thread pool) and end delivered or as a DLQ row (real
PostgreSQL, and SQLite); the loopback target answers 400 to alerts labelled to be refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from publishing.tracking import JobState
from tests.contract.sql_fixtures import migrate
from tests.support.fleet import wait_until
from tests.support.pipeline import Pipeline
from tests.support.services import flush_private_db

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

TOKEN = "property-operator-token-01"
REFUSE = "refuse-me"


class Sink:
    """A loopback target: 400 for an alert carrying ``REFUSE``, 200 otherwise."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(400 if REFUSE.encode() in body else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Fleet:
    def __init__(self, pipeline: Pipeline, api: FlaskClient) -> None:
        self.pipeline = pipeline
        self.api = api


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("prefork", "postgresql"), id="prefork-postgresql"),
        pytest.param(("threads", "postgresql"), id="threads-postgresql"),
        pytest.param(("prefork", "sqlite"), id="prefork-sqlite"),
        pytest.param(("threads", "sqlite"), id="threads-sqlite"),
    ],
)
def fleet(
    request: pytest.FixtureRequest,
    redis_url: str,
    migrated_postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    pool, database = request.param
    tmp = tmp_path_factory.mktemp(f"property-{pool}-{database}")
    if database == "sqlite":
        database_url = f"sqlite:///{tmp / 'dlq.db'}"
        migrate(database_url)
    else:
        database_url = migrated_postgres_url
    flush_private_db(redis_url)
    sink = Sink()
    pipeline = Pipeline(
        tmp,
        redis_url,
        database_url,
        [{"name": "sink", "type": "webhook", "url": sink.url}],
        PUBLISHING_API_TOKENS=f"operator:{TOKEN}",
        PUBLISHING_DEDUP_WINDOW_S="0",
    )
    try:
        pipeline.worker(concurrency=2, pool=pool)
        yield Fleet(pipeline, create_app(pipeline.settings).test_client())
        assert all(w.process is not None and w.process.poll() is None for w in pipeline.workers)
        log = (tmp / "worker-w1.log").read_text()
        assert "Unrecoverable error" not in log
    finally:
        pipeline.close()
        sink.stop()


# --- bodies within the caps ----------------------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
name = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
big_value = st.integers(0, 8192).map(lambda n: "v" * n)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | text
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)


@st.composite
def deep_metadata(draw: st.DrawFn) -> dict[str, Any]:
    node: Any = draw(scalar)
    for _ in range(draw(st.integers(0, 14))):  # with the outer object, at most 16 levels
        node = {draw(text): node}
    return {"deep": node, "wide": draw(json_value)}


labels = st.dictionaries(name, text | big_value, max_size=6)
outcome = st.sampled_from(["deliver", REFUSE])


@st.composite
def webhook_body(draw: st.DrawFn) -> dict[str, Any]:
    alerts = []
    for _ in range(draw(st.integers(1, 3))):
        status = draw(st.sampled_from(["firing", "resolved"]))
        alerts.append({
            "status": status,
            "labels": {**draw(labels), "alertname": draw(name), "outcome": draw(outcome)},
            "annotations": draw(st.dictionaries(name, text, max_size=4)),
            "startsAt": "2026-11-28T10:00:00Z",
            "endsAt": "2026-11-28T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph",
        })  # fmt: skip
    return {"version": "4", "status": "firing", "receiver": "r", "groupLabels": {}, "alerts": alerts}


@st.composite
def submit_body(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "alert": {
            "status": draw(st.sampled_from(["firing", "resolved"])),
            "labels": {**draw(labels), "alertname": draw(name), "outcome": draw(outcome)},
            "annotations": draw(st.dictionaries(name, text, max_size=4)),
            "starts_at": "2026-11-28T10:00:00Z",
        },
        "enrichment_metadata": draw(deep_metadata()),
    }


bodies = st.tuples(st.just("/webhook"), webhook_body()) | st.tuples(
    st.just("/api/v2/publishing/submit"), submit_body()
)


def test_every_accepted_body_is_delivered_or_dead_lettered(fleet: Fleet) -> None:
    pipeline = fleet.pipeline
    headers = {"Authorization": f"Bearer {TOKEN}"}
    accepted: list[str] = []

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(bodies)
    def accepted_is_never_lost(request: tuple[str, dict[str, Any]]) -> None:
        path, body = request
        answer = fleet.api.post(path, json=body, headers=headers)
        if answer.status_code != 202:
            assert answer.status_code in (400, 413, 422), answer.get_data(as_text=True)[:300]
            return
        jobs = answer.get_json()["jobs"]
        accepted.extend(job["id"] for job in jobs)
        for job in jobs:
            done = pipeline.wait_state(job["id"], JobState.SUCCEEDED, JobState.DLQ, timeout_s=30)
            if done.state is JobState.DLQ:
                wait_until(lambda job_id=job["id"]: any(r.job_id == job_id for r in pipeline.dlq_rows()), 10)
            if path != "/webhook":  # one alert: the target's answer decides
                assert (done.state is JobState.DLQ) == (body["alert"]["labels"]["outcome"] == REFUSE)

    accepted_is_never_lost()
    # The caps are generous: most generated bodies are accepted, and each was followed to its end.
    assert len(accepted) >= 15, accepted
