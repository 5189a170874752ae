"""Schemathesis against the live app factory on in-memory fakes, with an admin token: every
operation of the OpenAPI document, positive and negative inputs (NUL bytes and any Unicode in
generated paths, queries, headers and bodies), no 5xx, and every response conforming to the
document (status, content type, headers, body schema)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, reject, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api import create_app
from api.testing import TOKENS, in_memory_api, settings_with_tokens
from publishing.classification import ErrorType
from publishing.dlq import DeadLetter
from publishing.priority import Priority

TARGETS = [
    {
        "name": "ops-webhook",
        "type": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "bearer_token": "t0ken-SECRET",
    },
    {
        "name": "pagerduty-prod",
        "type": "pagerduty",
        "url": "http://127.0.0.1:9/v2/enqueue",
        "routing_key": "RK-1",
    },
]
MAX_EXAMPLES = 40


def _seeded_app():  # type: ignore[no-untyped-def]
    mem = in_memory_api(TARGETS)
    now = datetime.fromtimestamp(mem.clock(), UTC)
    for minutes in range(5):
        mem.dead_letters.write(
            DeadLetter(
                id=str(uuid.uuid4()),
                job_id=str(uuid.uuid4()),
                fingerprint=f"fp-{minutes}",
                target_name="ops-webhook",
                target_type="webhook",
                enriched_alert={
                    "alert": {
                        "alert_name": "DiskFull",
                        "status": "firing",
                        "labels": {"alertname": "DiskFull"},
                        "starts_at": "2023-01-01T00:00:00Z",
                    }
                },
                target_config={"name": "ops-webhook"},
                error_message="HTTP 400",
                error_type=ErrorType.PERMANENT,
                retry_count=0,
                priority=Priority.MEDIUM,
                failed_at=now - timedelta(minutes=minutes),
            )
        )
    return create_app(settings_with_tokens(), mem.services)


# A request over the alert cap is refused with 413, an over-long URL or header with 414 or 431:
# schemathesis does not expect those of a negative case by default. Generation spells out NUL
# bytes and the whole of Unicode (its defaults today), so that no later default narrows them.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "generation": {"allow-x00": True, "codec": "utf-8"},
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "409",
                    "413",
                    "414",
                    "415",
                    "422",
                    "431",
                ]
            }
        },
    }
)
schema = schemathesis.openapi.from_wsgi("/api/v2/openapi.json", _seeded_app(), config=CONFIG)
CASES: Counter[str] = Counter()
NUL_CASES = [0]


@pytest.fixture(scope="module", autouse=True)
def report_cases() -> Iterator[None]:
    yield
    print(
        f"\nschemathesis generated {sum(CASES.values())} cases over {len(CASES)} operations, "
        f"{NUL_CASES[0]} of them with a NUL byte"
    )


# An alert's validity has rules JSON Schema cannot state (endsAt not before startsAt; labels.alertname
# or alert_name; timestamps that stay in range in UTC), so a schema-valid alert may rightly be a
# 422: for the two alert endpoints "valid data is accepted" is not checked, everything else is.
ALERT_OPERATIONS = {"POST /webhook", "POST /api/v2/publishing/submit"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_document(case: schemathesis.Case) -> None:
    if any(value == [] for value in (case.query or {}).values()):
        # A parameter whose value is an empty list is not sent at all: the request schemathesis
        # counts as invalid is a valid one on the wire.
        reject()
    CASES[case.operation.label] += 1
    if "\\x00" in repr((case.path_parameters, case.query, case.headers, case.body)):  # repr escapes NUL
        NUL_CASES[0] += 1
    excluded = [positive_data_acceptance] if case.operation.label in ALERT_OPERATIONS else []
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS['admin']}"}, excluded_checks=excluded)
