"""Every metric of docs/operations.md changes when its event happens, observed through a real worker's
``/metrics`` endpoint (prefork, multiprocess mode) and the scrape-time fleet collector."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from publishing.adapters import metrics
from publishing.alert import EnrichedAlert
from publishing.breaker import BreakerState
from publishing.tracking import JobState
from tests.support.fleet import wait_until
from tests.support.http_target import HttpTarget, Reply
from tests.support.pipeline import Pipeline, alerts, am_alert
from tests.support.private_services import free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

ORIGINAL_17 = [
    "queue_size",
    "queue_capacity_utilization",
    "queue_submissions_total",
    "jobs_processed_total",
    "job_duration_seconds",
    "job_wait_time_seconds",
    "retry_attempts_total",
    "retry_success_rate",
    "circuit_breaker_state",
    "circuit_breaker_trips_total",
    "circuit_breaker_recoveries_total",
    "workers_active",
    "workers_idle",
    "worker_processing_duration_seconds",
    "dlq_size",
    "dlq_writes_total",
    "dlq_replays_total",
]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    full = f"{metrics.NS}_{name}"
    return sum(v for (n, ls), v in found.items() if n == full and set(labels.items()) <= set(ls))


def test_every_original_metric_is_observed(fresh_redis: str, dlq_database_url: str, tmp_path: Path) -> None:
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    port = free_port()
    ok, bad, flaky, down = (HttpTarget() for _ in range(4))
    bad.script([Reply(400)])
    flaky.script([Reply(503), Reply(200)])
    down.script([Reply(503)])
    targets = [
        {"name": "ok", "type": "webhook", "url": ok.url},
        {"name": "bad", "type": "webhook", "url": bad.url},
        {"name": "flaky", "type": "webhook", "url": flaky.url},
        {"name": "down", "type": "webhook", "url": down.url},
    ]
    pipeline = Pipeline(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        targets,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        PUBLISHING_WORKER_METRICS_PORT=str(port),
        PUBLISHING_BREAKER_FAILURE_THRESHOLD="2",
        PUBLISHING_BREAKER_OPEN_TIMEOUT_S="1",
        PUBLISHING_BREAKER_SUCCESS_THRESHOLD="1",
        PUBLISHING_MAX_RETRIES="10",
    )
    fleet = metrics.FleetCollector(
        pipeline.redis,
        pipeline.submitter.registry,
        pipeline.breakers,
        pipeline.dead_letters,
        pipeline.tracker,
    )
    try:
        queued = pipeline.submit(alerts(am_alert("Queued")), ["ok"])
        metrics.observe_submission(queued)
        before = samples(metrics.render([fleet]).decode())
        assert value(before, "queue_size", priority="high") == 1
        assert value(before, "queue_capacity_utilization", priority="high") == pytest.approx(1 / 10_000)
        assert value(before, "queue_submissions_total", priority="high", result="accepted") >= 1

        pipeline.worker(concurrency=2)
        jobs = [
            *pipeline.submit(alerts(am_alert("Bad")), ["bad"]).jobs,
            *pipeline.submit(alerts(am_alert("Flaky")), ["flaky"]).jobs,
            *pipeline.submit(alerts(am_alert("Down")), ["down"]).jobs,
        ]
        pipeline.wait_state(queued.jobs[0].id, JobState.SUCCEEDED)
        pipeline.wait_state(jobs[0].id, JobState.DLQ)
        pipeline.wait_state(jobs[1].id, JobState.SUCCEEDED)
        wait_until(lambda: pipeline.breakers.status("down").state is BreakerState.OPEN)
        down.script([Reply(200)])
        pipeline.wait_state(jobs[2].id, JobState.SUCCEEDED, timeout_s=30)
        (row,) = pipeline.dlq_rows(target="bad")
        bad.script([Reply(200)])
        replay = pipeline.submitter.submit_job(
            EnrichedAlert.from_dict(row.enriched_alert), pipeline.registry.get("bad"), replayed_from=row.id
        )
        pipeline.wait_state(replay.job_id, JobState.SUCCEEDED)

        worker_text = wait_until(lambda: _scrape(port), 10)
        found = samples(worker_text)
        fleet_found = samples(generate_latest(_only(fleet)).decode())
        assert value(found, "jobs_processed_total", target="ok", state="succeeded") == 1
        assert value(found, "jobs_processed_total", target="flaky", state="retrying") == 1
        assert value(found, "job_duration_seconds_count", target="ok", priority="high") == 1
        assert value(found, "job_wait_time_seconds_count", priority="high") >= 4
        assert value(found, "retry_attempts_total", target="flaky", error_type="transient") == 1
        assert value(found, "retry_success_rate", target="flaky", attempt="2") == 1.0
        assert value(found, "retry_success_rate", target="flaky", attempt="1") == 0.0
        assert value(fleet_found, "circuit_breaker_state", target="down") == 0
        assert value(fleet_found, "circuit_breaker_trips_total", target="down") == 1
        assert value(fleet_found, "circuit_breaker_recoveries_total", target="down") == 1
        assert value(found, "workers_idle") == 2
        assert value(found, "workers_active") == 0
        assert value(found, "worker_processing_duration_seconds_count") >= 5
        assert value(fleet_found, "dlq_size", target="bad") == 1
        assert value(found, "dlq_writes_total", target="bad", error_type="permanent") == 1
        assert value(found, "dlq_replays_total", target="bad", result="success") == 1
        assert value(found, "end_to_end_latency_seconds_count", priority="high", target="ok") == 1
        assert value(found, "deferrals_total", target="down") >= 1
        for name in ORIGINAL_17:
            assert any(n.startswith(f"{metrics.NS}_{name}") for n, _ in {**before, **found, **fleet_found}), (
                name
            )

        promtool = shutil.which("promtool")
        if promtool is None and os.environ.get("CI"):
            pytest.fail("promtool is missing: install Debian's prometheus package")
        if promtool:
            for text in (worker_text, metrics.render([fleet]).decode()):
                check = subprocess.run(
                    [promtool, "check", "metrics"], input=text, capture_output=True, text=True
                )
                assert check.returncode == 0, check.stdout + check.stderr
    finally:
        pipeline.close()
        for server in (ok, bad, flaky, down):
            server.stop()


def _only(collector: metrics.FleetCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def _scrape(port: int) -> str | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None


def _series_present(text: str, target: str) -> None:
    found = samples(text)
    for name, labels in [
        ("dlq_replays_total", {"target": target, "result": "success"}),
        ("dlq_replays_total", {"target": target, "result": "failed"}),
        ("dlq_writes_total", {"target": target, "error_type": "permanent"}),
        ("dedup_hits_total", {"target": target}),
        ("retry_attempts_total", {"target": target, "error_type": "transient"}),
        ("jobs_processed_total", {"target": target, "state": "succeeded"}),
        ("deferrals_total", {"target": target, "reason": "open"}),
        ("attempts_total", {"target": target, "attempt": "6+", "outcome": "failure"}),
        ("queue_submissions_total", {"priority": "low", "result": "duplicate"}),
        ("job_wait_time_seconds_count", {"priority": "high"}),
    ]:
        key = (f"{metrics.NS}_{name}", frozenset(labels.items()))
        assert key in found, f"{name}{labels} is missing"
        assert found[key] == 0.0, (name, labels)


def test_a_fresh_worker_and_api_show_every_series_at_zero(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path
) -> None:
    from api import create_app
    from tests.support.fleet import write_targets

    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    port = free_port()
    targets = [
        {"name": "x", "type": "webhook", "url": "http://127.0.0.1:9/x", "fallback": ["y"]},
        {"name": "y", "type": "webhook", "url": "http://127.0.0.1:9/y"},
    ]
    pipeline = Pipeline(
        tmp_path,
        fresh_redis,
        dlq_database_url,
        targets,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        PUBLISHING_WORKER_METRICS_PORT=str(port),
        PUBLISHING_API_TOKENS="reader:metrics-reader-token-0001",
    )
    try:
        pipeline.worker(concurrency=1)
        worker_text = wait_until(lambda: _scrape(port), 10)
        _series_present(worker_text, "x")
        _series_present(worker_text, "y")
        assert value(samples(worker_text), "fallback_reroutes_total", target="x", via="y") == 0.0
        assert 'fallback_reroutes_total{target="x",via="y"} 0.0' in worker_text

        api = create_app(pipeline.settings).test_client()
        api_text = api.get("/metrics").get_data(as_text=True)
        _series_present(api_text, "x")
        assert f'{metrics.NS}_dlq_replays_total{{result="success",target="x"}} 0.0' in api_text

        # A target added by a reload has its series from the next scrape on, in both.
        write_targets(
            pipeline.targets_file, [*targets, {"name": "z", "type": "webhook", "url": "http://127.0.0.1:9/z"}]
        )
        wait_until(lambda: 'target="z"' in api.get("/metrics").get_data(as_text=True), 10, 0.3)
        _series_present(api.get("/metrics").get_data(as_text=True), "z")
        wait_until(lambda: 'target="z"' in (_scrape(port) or ""), 10, 0.3)
        _series_present(_scrape(port) or "", "z")
    finally:
        pipeline.close()
