"""The DLQ over HTTP and the replay use cases (docs/design.md (Dead-letter queue); docs/design.md (API and access)) on in-memory fakes: listing and
filters, replay once (409 after), what happens when a replay cannot be enqueued, bulk replay
with dry run and progress, purge by age."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from api import create_app
from api.testing import InMemoryApi, bearer, in_memory_api, settings_with_tokens
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter, DLQFilter, ReplayResult
from publishing.priority import Priority
from publishing.replay import Replayer, ReplayRun, RunState
from publishing.tracking import JobState

TARGETS = [
    {"name": "ops-webhook", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
    {"name": "slack-ops", "type": "slack", "url": "http://127.0.0.1:9/services/T0/B0/SECRET"},
    {"name": "paused", "type": "webhook", "url": "http://127.0.0.1:9/paused", "enabled": False},
]
ADMIN = bearer("admin")
READER = bearer("reader")
DLQ = "/api/v2/publishing/dlq"


def letter(
    *,
    target: str = "ops-webhook",
    age: timedelta = timedelta(hours=1),
    now: datetime,
    severity: str = "critical",
    error_type: ErrorType = ErrorType.PERMANENT,
    replayed: bool = False,
    **overrides: Any,
) -> DeadLetter:
    status = "firing"
    priority = Priority.HIGH if severity == "critical" else Priority.MEDIUM
    fingerprint = uuid.uuid4().hex[:16]
    return DeadLetter(
        id=str(uuid.uuid4()),
        job_id=str(uuid.uuid4()),
        fingerprint=fingerprint,
        target_name=target,
        target_type="webhook",
        enriched_alert={
            "alert": {
                "fingerprint": fingerprint,
                "alert_name": "DiskFull",
                "status": status,
                "labels": {"alertname": "DiskFull", "severity": severity},
                "annotations": {},
                "starts_at": "2023-01-01T00:00:00Z",
                "ends_at": None,
                "generator_url": "",
            },
            "classification": None,
            "enrichment_metadata": {},
        },
        target_config={"name": target, "type": "webhook"},
        error_message="PermanentPublishError: HTTP 400",
        error_type=error_type,
        retry_count=0,
        priority=priority,
        failed_at=now - age,
        replayed=replayed,
        replayed_at=now if replayed else None,
        replay_job_id=str(uuid.uuid4()) if replayed else None,
        **overrides,
    )


@pytest.fixture
def mem() -> InMemoryApi:
    return in_memory_api(TARGETS)


@pytest.fixture
def now(mem: InMemoryApi) -> datetime:
    return datetime.fromtimestamp(mem.clock(), UTC)


@pytest.fixture
def app(mem: InMemoryApi) -> Flask:
    return create_app(settings_with_tokens(), mem.services)


def add(mem: InMemoryApi, *letters: DeadLetter) -> list[DeadLetter]:
    for item in letters:
        mem.dead_letters.write(item)
    return list(letters)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    return body


class TestReading:
    def test_list_is_newest_first_with_total_limit_and_offset(self, app, mem, now) -> None:
        rows = add(mem, *(letter(now=now, age=timedelta(minutes=m)) for m in (30, 10, 20)))
        body = app.test_client().get(f"{DLQ}?limit=2&offset=0", headers=READER).get_json()
        assert body["total"] == 3
        assert (body["limit"], body["offset"]) == (2, 0)
        assert [e["id"] for e in body["entries"]] == [rows[1].id, rows[2].id]
        body = app.test_client().get(f"{DLQ}?limit=2&offset=2", headers=READER).get_json()
        assert [e["id"] for e in body["entries"]] == [rows[0].id]

    def test_filters(self, app, mem, now) -> None:
        old, slack, transient, done = add(
            mem,
            letter(now=now, age=timedelta(days=3)),
            letter(now=now, target="slack-ops"),
            letter(now=now, error_type=ErrorType.TRANSIENT, severity="warning"),
            letter(now=now, replayed=True),
        )

        def ids(query: str) -> set[str]:
            return {
                e["id"] for e in app.test_client().get(f"{DLQ}?{query}", headers=READER).get_json()["entries"]
            }

        assert ids("target=slack-ops") == {slack.id}
        assert ids("error_type=transient") == {transient.id}
        assert ids("priority=medium") == {transient.id}
        assert ids("replayed=true") == {done.id}
        assert ids("replayed=false") == {old.id, slack.id, transient.id}
        cut = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
        assert ids(f"failed_before={cut}") == {old.id}
        assert ids(f"failed_after={cut}") == {slack.id, transient.id, done.id}

    @pytest.mark.parametrize(
        ("query", "parameter"),
        [
            ("error_type=fatal", "error_type"),
            ("priority=urgent", "priority"),
            ("replayed=maybe", "replayed"),
            ("failed_after=yesterday", "failed_after"),
            ("failed_before=2026-13-01T00:00:00Z", "failed_before"),
            ("failed_after=9999-12-31T23:59:59-05:00", "failed_after"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
        ],
    )
    def test_a_bad_parameter_is_400_naming_it(self, app, query, parameter) -> None:
        error = error_of(app.test_client().get(f"{DLQ}?{query}", headers=READER), 400, "invalid_parameter")
        assert error["details"]["parameter"] == parameter
        assert parameter in error["message"]

    def test_get_one_row(self, app, mem, now) -> None:
        (row,) = add(mem, letter(now=now))
        body = app.test_client().get(f"{DLQ}/{row.id}", headers=READER).get_json()
        assert body["id"] == row.id
        assert body["replayed"] is False

    @pytest.mark.parametrize("letter_id", [str(uuid.uuid4()), "not-a-uuid", "12345"])
    def test_an_unknown_or_malformed_id_is_404(self, app, letter_id) -> None:
        error = error_of(app.test_client().get(f"{DLQ}/{letter_id}", headers=READER), 404, "not_found")
        assert error["message"] == f"no dead letter {letter_id!r}"
        assert error["details"] == {"kind": "dead_letter", "id": letter_id}

    @pytest.mark.parametrize("path", ["replay", "purge"])
    def test_the_replay_and_purge_paths_are_not_row_ids(self, app, path) -> None:
        error = error_of(app.test_client().get(f"{DLQ}/{path}", headers=READER), 405, "method_not_allowed")
        assert "GET" not in error["details"]["allowed_methods"]

    def test_stats(self, app, mem, now) -> None:
        add(mem, letter(now=now), letter(now=now, target="slack-ops", replayed=True))
        body = app.test_client().get(f"{DLQ}/stats", headers=READER).get_json()
        assert body["total"] == 2
        assert body["by_target"] == {"ops-webhook": 1, "slack-ops": 1}
        assert body["replayed"] == 1

    def test_the_database_down_is_503_naming_it(self, app, mem) -> None:
        mem.dead_letters.unavailable = True
        for path in (DLQ, f"{DLQ}/stats", f"{DLQ}/{uuid.uuid4()}"):
            error = error_of(app.test_client().get(path, headers=READER), 503, "dependency_unavailable")
            assert error["details"]["dependency"] == "database"

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("postgresql://publishing:s3cret@db.internal:5433/publishing", "db.internal:5433/publishing"),
            ("postgresql+psycopg2://publishing:s3cret@db.internal/dlq", "db.internal:5432/dlq"),
            ("sqlite:///var/publishing.db", "var/publishing.db"),
        ],
    )
    def test_the_database_down_names_which_database_and_never_its_password(self, mem, url, shown) -> None:
        mem.dead_letters.unavailable = True
        app = create_app(settings_with_tokens(database_url=url), mem.services)
        response = app.test_client().get(DLQ, headers=READER)
        error = error_of(response, 503, "dependency_unavailable")
        assert shown in error["message"]
        assert error["details"]["at"] == shown
        assert "s3cret" not in response.get_data(as_text=True)


class TestReplayOne:
    def test_replay_enqueues_the_alert_again_once(self, app, mem, now) -> None:
        (row,) = add(mem, letter(now=now))
        response = app.test_client().post(f"{DLQ}/{row.id}/replay", headers=ADMIN)
        assert response.status_code == 202
        body = response.get_json()
        (job,) = mem.enqueuer.sent
        assert body == {
            "job_id": job.job_id,
            "dead_letter_id": row.id,
            "target": "ops-webhook",
            "priority": "high",
        }
        assert job.replayed_from == row.id
        assert job.alert.alert.fingerprint == row.fingerprint
        stored = mem.dead_letters.get(row.id)
        assert stored.replayed and stored.replay_job_id == job.job_id
        assert mem.tracker.get(job.job_id).state is JobState.QUEUED

        second = app.test_client().post(f"{DLQ}/{row.id}/replay", headers=ADMIN)
        error = error_of(second, 409, "already_replayed")
        assert error["details"]["replay_job_id"] == job.job_id
        assert len(mem.enqueuer.sent) == 1

    @pytest.mark.parametrize("letter_id", [str(uuid.uuid4()), "not-a-uuid"])
    def test_an_unknown_or_malformed_id_is_404(self, app, mem, letter_id) -> None:
        error = error_of(app.test_client().post(f"{DLQ}/{letter_id}/replay", headers=ADMIN), 404, "not_found")
        assert error["message"] == f"no dead letter {letter_id!r}"
        assert error["details"] == {"kind": "dead_letter", "id": letter_id}
        assert mem.enqueuer.sent == []

    @pytest.mark.parametrize(("target", "reason"), [("gone", "no longer configured"), ("paused", "disabled")])
    def test_a_row_whose_target_cannot_take_it_is_409_and_stays_replayable(
        self, app, mem, now, target, reason
    ) -> None:
        (row,) = add(mem, letter(now=now, target=target))
        error = error_of(
            app.test_client().post(f"{DLQ}/{row.id}/replay", headers=ADMIN), 409, "replay_refused"
        )
        assert reason in error["details"]["reason"]
        assert mem.dead_letters.get(row.id).replayed is False
        assert mem.enqueuer.sent == []

    def test_an_enqueue_failure_after_the_claim_leaves_the_row_replayable(
        self, app, mem, now, monkeypatch
    ) -> None:
        (row,) = add(mem, letter(now=now))

        def broker_down(job: Any) -> None:
            raise ConnectionError("broker unreachable")

        monkeypatch.setattr(mem.enqueuer, "enqueue", broker_down)
        error = error_of(
            app.test_client().post(f"{DLQ}/{row.id}/replay", headers=ADMIN), 503, "dependency_unavailable"
        )
        assert error["details"]["dependency"] == "redis"
        assert error["details"]["replay_result"] == "skipped"
        stored = mem.dead_letters.get(row.id)
        assert not stored.replayed and stored.replay_result is ReplayResult.SKIPPED
        assert stored.replay_job_id is None
        assert mem.tracker.get(error["details"]["job_id"]).state is JobState.FAILED

        monkeypatch.undo()
        retried = app.test_client().post(f"{DLQ}/{row.id}/replay", headers=ADMIN)
        assert retried.status_code == 202
        assert mem.dead_letters.get(row.id).replayed

    def test_the_database_down_is_503_and_nothing_is_enqueued(self, app, mem, now) -> None:
        (row,) = add(mem, letter(now=now))
        mem.dead_letters.unavailable = True
        error = error_of(
            app.test_client().post(f"{DLQ}/{row.id}/replay", headers=ADMIN), 503, "dependency_unavailable"
        )
        assert error["details"]["dependency"] == "database"
        assert mem.enqueuer.sent == []


class TestBulkReplay:
    def test_a_dry_run_lists_the_rows_and_enqueues_nothing(self, app, mem, now) -> None:
        rows = add(mem, *(letter(now=now, age=timedelta(minutes=m)) for m in (1, 2, 3)))
        add(mem, letter(now=now, target="slack-ops"), letter(now=now, replayed=True))
        response = app.test_client().post(
            f"{DLQ}/replay", json={"target": "ops-webhook", "dry_run": True}, headers=ADMIN
        )
        assert response.status_code == 202
        run = response.get_json()
        assert run["dry_run"] is True
        assert run["total"] == 3
        assert run["ids"] == [r.id for r in rows]
        assert run["ids_truncated"] is False
        assert run["state"] == "done"
        assert mem.enqueuer.sent == []
        assert all(not mem.dead_letters.get(r.id).replayed for r in rows)
        assert mem.replay_runner.started == []
        progress = app.test_client().get(response.headers["Location"], headers=READER).get_json()
        assert progress["run_id"] == run["run_id"]
        assert progress["dry_run"] is True

    def test_a_run_replays_every_matching_unreplayed_row(self, app, mem, now) -> None:
        rows = add(mem, *(letter(now=now, age=timedelta(minutes=m)) for m in range(1, 8)))
        other = add(mem, letter(now=now, error_type=ErrorType.TRANSIENT))
        mem.replay_runner._page_size = 3
        response = app.test_client().post(f"{DLQ}/replay", json={"error_type": "permanent"}, headers=ADMIN)
        assert response.status_code == 202
        run = response.get_json()
        assert (run["dry_run"], run["total"], run["state"]) == (False, 7, "queued")
        progress = app.test_client().get(f"{DLQ}/replay/{run['run_id']}", headers=READER).get_json()
        assert (progress["state"], progress["done"], progress["failed"]) == ("done", 7, 0)
        assert progress["finished_at"] is not None
        assert {j.replayed_from for j in mem.enqueuer.sent} == {r.id for r in rows}
        assert not mem.dead_letters.get(other[0].id).replayed

    def test_rows_that_cannot_be_replayed_are_counted_and_do_not_stop_the_pages(self, app, mem, now) -> None:
        ages = [timedelta(minutes=m) for m in range(1, 9)]
        targets = [
            "ops-webhook",
            "gone",
            "ops-webhook",
            "ops-webhook",
            "gone",
            "ops-webhook",
            "paused",
            "slack-ops",
        ]
        add(mem, *(letter(now=now, age=a, target=t) for a, t in zip(ages, targets, strict=True)))
        mem.replay_runner._page_size = 2
        run = app.test_client().post(f"{DLQ}/replay", json={}, headers=ADMIN).get_json()
        progress = app.test_client().get(f"{DLQ}/replay/{run['run_id']}", headers=READER).get_json()
        assert (progress["done"], progress["failed"], progress["skipped"]) == (5, 3, 0)
        assert progress["state"] == "done"
        assert len(mem.enqueuer.sent) == 5

    def test_an_empty_body_replays_everything_unreplayed(self, app, mem, now) -> None:
        add(mem, letter(now=now), letter(now=now, target="slack-ops"))
        response = app.test_client().post(f"{DLQ}/replay", headers=ADMIN)
        assert response.status_code == 202
        assert len(mem.enqueuer.sent) == 2

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"dry_run": "yes"}, "dry_run"),
            ({"error_type": "fatal"}, "error_type"),
            ({"failed_after": "last week"}, "failed_after"),
            ({"replayed": True}, "replayed"),
            ({"limit": 5}, "limit"),
            ([1, 2], "$"),
        ],
    )
    def test_a_bad_body_is_422_naming_the_field(self, app, mem, now, body, field) -> None:
        add(mem, letter(now=now))
        error = error_of(
            app.test_client().post(f"{DLQ}/replay", json=body, headers=ADMIN), 422, "invalid_body"
        )
        assert error["details"]["problems"][0]["field"] == field
        assert mem.enqueuer.sent == []
        assert mem.replay_runs.runs == {}

    def test_malformed_json_is_400(self, app) -> None:
        response = app.test_client().post(
            f"{DLQ}/replay", data="{", headers=ADMIN, content_type="application/json"
        )
        error_of(response, 400, "malformed_json")

    def test_an_unknown_run_is_404(self, app) -> None:
        error = error_of(app.test_client().get(f"{DLQ}/replay/nope", headers=READER), 404, "not_found")
        assert error["details"] == {"kind": "replay_run", "id": "nope"}


class TestReplayer:
    """The use case itself, below the HTTP layer."""

    def replayer(self, mem: InMemoryApi) -> Replayer:
        return mem.services.replayer

    def test_rows_that_fail_after_the_run_began_are_not_part_of_it(self, mem, now) -> None:
        add(mem, letter(now=now))
        run = self.replayer(mem).new_run(DLQFilter(), dry_run=False)
        # A row written after the run was created (say, a replayed job failing again).
        mem.clock.advance(10)
        add(mem, letter(now=now + timedelta(seconds=10), age=timedelta(0)))
        finished = self.replayer(mem).replay_page(run, page_size=10)
        assert (finished.state, finished.done, finished.total) == (RunState.DONE, 1, 1)

    def test_a_broker_failure_ends_the_run_as_failed(self, mem, now, monkeypatch) -> None:
        add(mem, *(letter(now=now, age=timedelta(minutes=m)) for m in (1, 2, 3)))

        def broker_down(job: Any) -> None:
            raise ConnectionError("down")

        monkeypatch.setattr(mem.enqueuer, "enqueue", broker_down)
        run = self.replayer(mem).new_run(DLQFilter(), dry_run=False)
        finished = self.replayer(mem).replay_page(run, page_size=10)
        assert finished.state is RunState.FAILED
        assert (finished.done, finished.failed) == (0, 1)
        assert "skipped" in (finished.error or "")

    def test_a_run_survives_its_record_round_trip(self, mem, now) -> None:
        run = self.replayer(mem).new_run(DLQFilter(target="ops-webhook", failed_after=now), dry_run=True)
        assert ReplayRun.from_record(run.to_record()) == run


class TestPurge:
    def test_only_rows_older_than_the_cut_go(self, app, mem, now) -> None:
        _old, recent = add(
            mem, letter(now=now, age=timedelta(days=8)), letter(now=now, age=timedelta(days=6))
        )
        body = app.test_client().delete(f"{DLQ}/purge?older_than=7d", headers=ADMIN).get_json()
        assert body["deleted_count"] == 1
        assert body["older_than"] == "7d"
        assert body["cutoff"] == (now - timedelta(days=7)).isoformat()
        assert [e.id for e in mem.dead_letters.read(DLQFilter())[0]] == [recent.id]

    def test_replayed_only_keeps_unreplayed_rows(self, app, mem, now) -> None:
        kept, _gone = add(
            mem,
            letter(now=now, age=timedelta(hours=3)),
            letter(now=now, age=timedelta(hours=3), replayed=True),
        )
        body = (
            app.test_client()
            .delete(f"{DLQ}/purge?older_than=2h&replayed_only=true", headers=ADMIN)
            .get_json()
        )
        assert body == {**body, "deleted_count": 1, "replayed_only": True}
        assert [e.id for e in mem.dead_letters.read(DLQFilter())[0]] == [kept.id]

    def test_older_than_defaults_to_a_week(self, app, mem, now) -> None:
        add(mem, letter(now=now, age=timedelta(days=8)), letter(now=now, age=timedelta(days=6)))
        body = app.test_client().delete(f"{DLQ}/purge", headers=ADMIN).get_json()
        assert (body["deleted_count"], body["older_than"]) == (1, "168h")

    def test_a_duration_beyond_the_calendar_deletes_nothing(self, app, mem, now) -> None:
        add(mem, letter(now=now, age=timedelta(days=3650)))
        response = app.test_client().delete(f"{DLQ}/purge?older_than=99999999999999w", headers=ADMIN)
        assert response.get_json()["deleted_count"] == 0

    def test_an_unknown_parameter_is_400_and_deletes_nothing(self, app, mem, now) -> None:
        add(mem, letter(now=now, age=timedelta(days=30)))
        response = app.test_client().delete(f"{DLQ}/purge?olderthan=1h", headers=ADMIN)
        assert error_of(response, 400, "invalid_parameter")["details"]["parameter"] == "olderthan"
        assert mem.dead_letters.stats().total == 1

    @pytest.mark.parametrize("duration", ["168h", "7d", "1w", "10080m", "604800s", "6d24h"])
    def test_durations(self, app, mem, now, duration) -> None:
        add(mem, letter(now=now, age=timedelta(days=7, seconds=1)), letter(now=now, age=timedelta(days=6)))
        assert (
            app.test_client()
            .delete(f"{DLQ}/purge?older_than={duration}", headers=ADMIN)
            .get_json()["deleted_count"]
            == 1
        )

    @pytest.mark.parametrize(
        "query",
        [
            "older_than=7",
            "older_than=a%20week",
            "older_than=-7d",
            "older_than=",
            "replayed_only=perhaps",
        ],
    )
    def test_a_bad_parameter_is_400(self, app, mem, now, query) -> None:
        add(mem, letter(now=now, age=timedelta(days=30)))
        error_of(app.test_client().delete(f"{DLQ}/purge?{query}", headers=ADMIN), 400, "invalid_parameter")
        assert mem.dead_letters.stats().total == 1


class TestPurgeSafety:
    @pytest.mark.parametrize("older_than", ["0s", "59m", "30m", "3599s", "500ms"])
    def test_below_an_hour_without_force_is_400_and_deletes_nothing(self, app, mem, now, older_than) -> None:
        add(mem, letter(now=now, age=timedelta(days=3)), letter(now=now, age=timedelta(minutes=5)))
        response = app.test_client().delete(f"{DLQ}/purge?older_than={older_than}", headers=ADMIN)
        error = error_of(response, 400, "invalid_parameter")
        assert "older_than" in error["message"] and "force" in error["message"]
        assert error["details"]["parameter"] == "older_than"
        assert mem.dead_letters.stats().total == 2

    def test_below_an_hour_with_force_deletes(self, app, mem, now) -> None:
        add(mem, letter(now=now, age=timedelta(minutes=10)), letter(now=now, age=timedelta(minutes=1)))
        body = app.test_client().delete(f"{DLQ}/purge?older_than=5m&force=true", headers=ADMIN).get_json()
        assert body["deleted_count"] == 1
        assert mem.dead_letters.stats().total == 1

    def test_an_hour_needs_no_force(self, app, mem, now) -> None:
        add(mem, letter(now=now, age=timedelta(hours=2)))
        body = app.test_client().delete(f"{DLQ}/purge?older_than=1h", headers=ADMIN).get_json()
        assert body["deleted_count"] == 1

    def test_a_dry_run_counts_and_deletes_nothing(self, app, mem, now) -> None:
        add(
            mem,
            letter(now=now, age=timedelta(days=9)),
            letter(now=now, age=timedelta(days=8), replayed=True),
            letter(now=now, age=timedelta(days=1)),
        )
        client = app.test_client()
        body = client.delete(f"{DLQ}/purge?older_than=7d&dry_run=true", headers=ADMIN).get_json()
        assert body == {**body, "deleted_count": 0, "would_delete": 2, "dry_run": True}
        body = client.delete(
            f"{DLQ}/purge?older_than=7d&dry_run=true&replayed_only=true", headers=ADMIN
        ).get_json()
        assert (body["deleted_count"], body["would_delete"]) == (0, 1)
        assert mem.dead_letters.stats().total == 3

    def test_a_dry_run_below_an_hour_needs_no_force(self, app, mem, now) -> None:
        add(mem, letter(now=now, age=timedelta(minutes=5)))
        body = app.test_client().delete(f"{DLQ}/purge?older_than=0s&dry_run=true", headers=ADMIN).get_json()
        assert (body["would_delete"], body["dry_run"]) == (1, True)
        assert mem.dead_letters.stats().total == 1

    def test_a_real_purge_says_it_was_not_a_dry_run(self, app, mem, now) -> None:
        body = app.test_client().delete(f"{DLQ}/purge?older_than=7d", headers=ADMIN).get_json()
        assert body["dry_run"] is False
        assert "would_delete" not in body

    @pytest.mark.parametrize("query", ["force=perhaps", "dry_run=maybe"])
    def test_bad_switches_are_400(self, app, mem, now, query) -> None:
        add(mem, letter(now=now, age=timedelta(days=30)))
        error_of(app.test_client().delete(f"{DLQ}/purge?{query}", headers=ADMIN), 400, "invalid_parameter")
        assert mem.dead_letters.stats().total == 1
