"""The console's pages with 10,000 jobs tracked and 10,000 dead letters: each page's server
time (median and worst of several loads, through the app's WSGI callable, signed in as a
reader) on a private Redis and a fresh DLQ database. Every page reads one page of data, so
the figures do not grow with what is stored; the goal is 100 ms a page.

``.venv/bin/python -m bench.scenarios.console`` (not one of ``make bench``'s scenarios: it
measures the console, not the pipeline)."""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api import create_app
from api.services import services_of
from bench.context import Options, environment
from bench.services import dlq_database
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter
from publishing.priority import Priority
from publishing.settings import Settings
from publishing.tracking import JobSnapshot, JobState

JOBS = 10_000
ROWS = 10_000
LOADS = 15
GOAL_MS = 100.0
TOKEN = "reader-bench-console-0001"
TARGETS = ("pagerduty-prod", "ops-webhook", "slack-ops")


def _fill(app: Any) -> str:
    svc = services_of(app)
    now = time.time()
    jobs = [
        JobSnapshot(
            id=str(uuid.uuid4()),
            fingerprint=uuid.uuid4().hex[:16],
            alert_name=f"Alert{i % 50}",
            target=TARGETS[i % 3],
            priority=list(Priority)[i % 3],
            state=(JobState.SUCCEEDED, JobState.DLQ, JobState.RETRYING)[i % 3],
            submitted_at=now - i,
        )
        for i in range(JOBS)
    ]
    for start in range(0, JOBS, 500):
        svc.tracker.record_many(jobs[start : start + 500])
    moment = datetime.now(UTC)
    for i in range(ROWS):
        fingerprint = uuid.uuid4().hex[:16]
        svc.dead_letters.write(
            DeadLetter(
                id=str(uuid.uuid4()),
                job_id=str(uuid.uuid4()),
                fingerprint=fingerprint,
                target_name=TARGETS[i % 3],
                target_type="webhook",
                enriched_alert={"alert": {"fingerprint": fingerprint, "alert_name": f"Alert{i % 50}"}},
                target_config={"name": TARGETS[i % 3]},
                error_message="PermanentPublishError: HTTP 410",
                error_type=list(ErrorType)[i % 3],
                retry_count=i % 6,
                priority=list(Priority)[i % 3],
                failed_at=moment - timedelta(seconds=i),
            )
        )
    return jobs[JOBS // 2].id


def main() -> int:
    with environment("console", Options()) as env, dlq_database(env.run_dir) as database_url:
        targets = env.run_dir / "targets.json"
        targets.write_text(
            json.dumps(
                {"targets": [{"name": n, "type": "webhook", "url": env.sink.url("fast")} for n in TARGETS]}
            )
        )
        settings = Settings.from_env(
            {
                "REDIS_URL": env.redis.url,
                "DATABASE_URL": database_url,
                "PUBLISHING_TARGETS": str(targets),
                "PUBLISHING_API_TOKENS": f"reader:{TOKEN}",
            }
        )
        app = create_app(settings)
        job_id = _fill(app)
        client = app.test_client()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").get_data(as_text=True))
        assert csrf is not None
        client.post("/ui/login", data={"csrf_token": csrf.group(1), "token": TOKEN})
        row = services_of(app).dead_letters.read(DLQFilter(), limit=1)[0][0]
        pages = {
            "overview": "/ui/",
            "dlq": "/ui/dlq",
            "dlq filtered": "/ui/dlq?target=ops-webhook&error_type=permanent&replayed=false&limit=200",
            "dlq deep page": "/ui/dlq?offset=9800&limit=200",
            "dlq row": f"/ui/dlq/{row.id}",
            "jobs": "/ui/jobs",
            "jobs search by name": "/ui/jobs?q=Alert7",
            "jobs search by id": f"/ui/jobs?q={job_id}",
            "job": f"/ui/jobs/{job_id}",
            "targets": "/ui/targets",
            "target": "/ui/targets/ops-webhook",
        }
        print(f"console pages, {JOBS} jobs tracked, {ROWS} DLQ rows, {LOADS} loads each (ms):")
        worst_median = 0.0
        for name, path in pages.items():
            timings = []
            for _ in range(LOADS):
                started = time.perf_counter()
                answer = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                assert answer.status_code in (200, 302), (path, answer.status_code)
            median = statistics.median(timings)
            worst_median = max(worst_median, median)
            print(f"  {name:22} median {median:6.1f}  max {max(timings):6.1f}")
        print(f"slowest median {worst_median:.1f} ms (goal {GOAL_MS:.0f} ms)")
        return 0 if worst_median <= GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
