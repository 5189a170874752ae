"""The shapes of the breaker and target answers and the test alert's body (see ``api.schemas``),
with the enums derived from the domain's where the API shows them differently."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt
from pydantic.json_schema import SkipJsonSchema

from publishing.alert import Severity
from publishing.breaker import BreakerState
from publishing.priority import Priority
from publishing.target_health import HealthEvent
from publishing.targets import REDACTED, TargetFormat, TargetType

# Breaker states as the API shows them: the IntEnum's labels (its values are gauge numbers).
BreakerLabel = StrEnum("BreakerState", {s.name: s.label for s in BreakerState})  # type: ignore[misc]
# The breaker events a target's health history records.
BreakerEvent = StrEnum(  # type: ignore[misc]
    "BreakerEvent", {e.name: e.value for e in (HealthEvent.TRIPPED, HealthEvent.RECOVERED)}
)
# A test alert is a real severity; "noise" would not be delivered anywhere.
TestSeverity = StrEnum(  # type: ignore[misc]
    "TestSeverity", {s.name: s.value for s in Severity if s is not Severity.NOISE}
)
TEST_SEVERITIES: tuple[str, ...] = tuple(s.value for s in TestSeverity)

Count = NonNegativeInt
Redacted = Annotated[str, Field(json_schema_extra={"enum": [REDACTED]})]


class BreakerStatus(BaseModel):
    target: str
    state: BreakerLabel
    consecutive_failures: Count
    probe_successes: Count
    opened_at: datetime | None
    trips: Count
    recoveries: Count


class BreakerList(BaseModel):
    breakers: list[BreakerStatus]


class RedactedBasicAuth(BaseModel):
    username: str
    password: Redacted


class SmtpInfo(BaseModel):
    """An email target's relay, its password redacted."""

    model_config = ConfigDict(populate_by_name=True)

    host: str
    port: int
    starttls: bool
    username: str | None
    password: Redacted | SkipJsonSchema[None] = None
    sender: str = Field(alias="from")
    to: list[str]


class TemplateInfo(BaseModel):
    title: str | SkipJsonSchema[None] = None
    text: str | SkipJsonSchema[None] = None


class RateLimitInfo(BaseModel):
    per_s: float
    burst: int


class BreakerHistoryEntry(BaseModel):
    event: BreakerEvent
    at: datetime


class TargetHealth(BaseModel):
    success_rate: float | None
    attempts: Count
    successes: Count
    failures: Count
    deferrals: Count
    pauses: Count
    rate_limited: Count
    fallback_reroutes: Count
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None = Field(description="Redacted.")
    breaker_history: list[BreakerHistoryEntry]


class Target(BaseModel):
    name: str
    type: TargetType
    format: TargetFormat
    url: str = Field(description="A Slack webhook URL is itself a secret and shown redacted.")
    enabled: bool
    headers: dict[str, str]
    filter: dict[str, Any]
    timeout_s: float | None
    rate_limit: RateLimitInfo | None
    fallback: list[str]
    fallback_after_s: float
    fallback_priorities: list[Priority]
    routing_key: Redacted | SkipJsonSchema[None] = None
    api_token: Redacted | SkipJsonSchema[None] = None
    bearer_token: Redacted | SkipJsonSchema[None] = None
    signing_secret: Redacted | SkipJsonSchema[None] = None
    basic_auth: RedactedBasicAuth | SkipJsonSchema[None] = None
    api_key: Redacted | SkipJsonSchema[None] = None
    smtp: SmtpInfo | SkipJsonSchema[None] = None
    template: TemplateInfo | SkipJsonSchema[None] = None
    max_retries: Count | SkipJsonSchema[None] = None
    retry_base_s: float | SkipJsonSchema[None] = None
    retry_max_backoff_s: float | SkipJsonSchema[None] = None
    resolve_only_if_fired: bool | SkipJsonSchema[None] = Field(
        None, description="Present (true) when a resolve goes only after a delivered firing."
    )
    group_by: list[str] | SkipJsonSchema[None] = Field(None, description="Storm grouping's labels.")
    group_wait_s: float | SkipJsonSchema[None] = None
    group_max_alerts: int | SkipJsonSchema[None] = None
    breaker: BreakerStatus
    health: TargetHealth


class TargetList(BaseModel):
    targets: list[Target]


class TestAlertRequest(BaseModel):
    severity: TestSeverity = TestSeverity(Severity.WARNING.value)


class TestAlertAccepted(BaseModel):
    job_id: str
    target: str
    priority: Priority
    fingerprint: str
