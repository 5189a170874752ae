"""The targets-file format, declared once: the pydantic models ``publishing.target_config``
validates with, and the JSON Schema generated from them (shipped as ``deploy/targets.schema.json``,
served by the API, used by editors and CI). Rules that span fields (a type's formats, its
required secret) are in the schema too, built from the same tables the parser uses."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from publishing.events import EventsSpec
from publishing.targets import ALLOWED_FORMATS, DNS_LABEL, TargetFormat, TargetType

SCHEMA_ID = "https://alert-publishing.invalid/targets.schema.json"
# Where the file is served and shipped; the ``$id`` is a name, not a place to fetch.
SCHEMA_PATH = "deploy/targets.schema.json"
# Each type's secret that a target of it cannot do without.
REQUIRED_SECRET: dict[TargetType, str] = {
    TargetType.PAGERDUTY: "routing_key",
    TargetType.ROOTLY: "api_token",
    TargetType.OPSGENIE: "api_key",
}
# Types whose provider keeps one incident (or alert) per alert: one message for many would
# merge incidents, so they cannot group (docs/design.md (Storm grouping)).
NO_GROUPING: frozenset[TargetType] = frozenset({TargetType.PAGERDUTY, TargetType.OPSGENIE, TargetType.ROOTLY})
GROUP_FIELDS = ("group_by", "group_wait_s", "group_max_alerts")
# The one type that is not sent over HTTP: it has ``smtp`` instead of ``url``.
NOT_HTTP = TargetType.EMAIL

# Strict: a YAML ``yes``, ``3`` or ``"3"`` is not silently turned into another type.
_STRICT = ConfigDict(extra="forbid", strict=True)
TargetName = Annotated[
    StrictStr,
    Field(
        pattern=DNS_LABEL.pattern,
        description="A DNS-1123 label: lower-case a-z, 0-9 and '-', at most 63 characters.",
    ),
]
Secret = Annotated[StrictStr, Field(min_length=1)]
Seconds = Annotated[float, Field(gt=0)]
StringMap = dict[StrictStr, StrictStr]
StringOrList = StrictStr | list[StrictStr]
LabelName = Annotated[StrictStr, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
EmailAddress = Annotated[StrictStr, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$")]
# Scheme and host; ``publishing.target_config`` checks the rest with ``urlsplit``.
_URL = r"^[hH][tT][tT][pP][sS]?://[^/?#\s]+"


class RateLimitSpec(BaseModel):
    """A fleet-wide rate: ``per_s`` or ``per_min`` attempts (exactly one), ``burst`` back to back."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"oneOf": [{"required": ["per_s"]}, {"required": ["per_min"]}]},
    )

    per_s: Seconds | None = Field(None, description="Attempts a second.")
    per_min: Seconds | None = Field(None, description="Attempts a minute.")
    burst: StrictInt = Field(1, ge=1, description="Attempts allowed back to back.")

    @model_validator(mode="after")
    def _one_rate(self) -> RateLimitSpec:
        if (self.per_s is None) == (self.per_min is None):
            raise ValueError("exactly one of per_s and per_min")
        return self

    @property
    def per_second(self) -> float:
        return self.per_s if self.per_s is not None else (self.per_min or 0.0) / 60


class BasicAuthSpec(BaseModel):
    """HTTP basic authentication."""

    model_config = _STRICT

    username: StrictStr
    password: StrictStr


class FilterSpec(BaseModel):
    """Which alerts go to the target: every given key must match; none given matches every alert."""

    model_config = _STRICT

    labels: StringMap | None = Field(None, description="Labels that must have exactly these values.")
    labels_regex: StringMap | None = Field(
        None, description="Labels whose values must fully match these (Python) regular expressions."
    )
    severity: StringOrList | None = Field(
        None, description="Severities to take: the classification's if any, else the severity label."
    )
    status: Literal["firing", "resolved"] | list[Literal["firing", "resolved"]] | None = None


class SmtpSpec(BaseModel):
    """An email target's SMTP relay: STARTTLS, and login when a username is given."""

    model_config = _STRICT

    host: Annotated[StrictStr, Field(min_length=1)]
    port: StrictInt = Field(587, ge=1, le=65535)
    starttls: StrictBool = Field(True, description="Upgrade the connection with STARTTLS before login.")
    username: Annotated[StrictStr, Field(min_length=1)] | None = None
    password: Secret | None = Field(None, description="The login's password (secret).")
    sender: EmailAddress = Field(alias="from", description="The From address.")
    to: list[EmailAddress] = Field(min_length=1, description="The recipients.")
    ca_file: StrictStr | None = Field(None, description="A PEM file of certificates to trust for STARTTLS.")


class TemplateSpec(BaseModel):
    """Jinja2 templates (sandboxed) for the title and text, rendered with the alert's fields."""

    model_config = _STRICT

    title: StrictStr | None = None
    text: StrictStr | None = None


class TargetSpec(BaseModel):
    """One target: where alerts go, in which format, with which credentials."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Target")

    name: TargetName = Field(description="Unique across files.")
    # Not strict: a file holds the enum's value, never the enum.
    type: TargetType = Field(strict=False)
    format: TargetFormat | None = Field(
        None, strict=False, description="The payload format; defaults to the type's own."
    )
    url: Annotated[StrictStr, Field(pattern=_URL)] | None = Field(
        None, description="An absolute http:// or https:// URL (every type but email)."
    )
    enabled: StrictBool = True
    headers: StringMap | None = Field(
        None, description="Extra request headers; credential-like ones are secret."
    )
    filter: FilterSpec | None = None
    timeout_s: Seconds | None = Field(
        None, description="Per-attempt deadline; PUBLISHING_HTTP_TIMEOUT_S if absent."
    )
    routing_key: Secret | None = Field(None, description="PagerDuty's integration key (secret).")
    api_token: Secret | None = Field(None, description="Rootly's API token (secret).")
    bearer_token: Secret | None = Field(None, description="Sent as Authorization: Bearer (secret).")
    basic_auth: BasicAuthSpec | None = None
    signing_secret: Secret | None = Field(
        None, description="Standard Webhooks signing secret (whsec_...), for the webhook-signature header."
    )
    api_key: Secret | None = Field(None, description="Opsgenie's API key, sent as GenieKey (secret).")
    smtp: SmtpSpec | None = Field(None, description="An email target's SMTP relay.")
    template: TemplateSpec | None = None
    max_retries: StrictInt | None = Field(None, ge=0, description="Retries after the first attempt.")
    retry_base_s: Seconds | None = Field(None, description="The first retry's backoff.")
    retry_max_backoff_s: Seconds | None = Field(None, description="The longest backoff.")
    resolve_only_if_fired: StrictBool = Field(
        False, description="Send a resolve only if a firing of the alert was delivered here."
    )
    rate_limit: RateLimitSpec | Literal[False] | None = Field(
        None, description="Absent: the provider's documented limit; false: none."
    )
    fallback: TargetName | list[TargetName] | None = Field(
        None, description="Targets that take this one's jobs while it is down."
    )
    fallback_after_s: Annotated[float, Field(ge=0)] = 60.0
    fallback_priorities: list[Literal["high", "medium", "low"]] = ["high"]
    url_is_public: StrictBool = Field(
        False, description="Show the URL's path and query (never for slack: its URL is its credential)."
    )
    group_by: list[LabelName] | None = Field(
        None,
        description="Storm grouping: alerts with the same values of these labels arriving within "
        "group_wait_s go out as one message ([] groups every alert of the target).",
    )
    group_wait_s: Seconds | None = Field(
        None, description="How long a group collects alerts before its message goes (with group_by)."
    )
    group_max_alerts: StrictInt | None = Field(
        None,
        ge=1,
        description="At most this many alerts listed in a grouped Slack, Teams, Discord or email message.",
    )


class TargetsDocument(BaseModel):
    """A file of several targets."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Targets")

    targets: list[TargetSpec]
    events: EventsSpec | None = None


class TargetsFile(RootModel[TargetsDocument | TargetSpec | None]):
    """A targets file: ``{targets: [...]}``, one target object, or empty."""


def _cross_field_rules() -> list[dict[str, Any]]:
    """What one field's value demands of another, as JSON Schema ``if``/``then``."""
    rules: list[dict[str, Any]] = []
    for target_type, formats in ALLOWED_FORMATS.items():
        allowed = sorted(f.value for f in formats)
        rules.append(
            {
                "if": {"properties": {"type": {"const": target_type.value}}, "required": ["type"]},
                "then": {"properties": {"format": {"enum": [*allowed, None]}}},
            }
        )
    for target_type, secret in REQUIRED_SECRET.items():
        rules.append(
            {
                "if": {"properties": {"type": {"const": target_type.value}}, "required": ["type"]},
                "then": {"required": [secret], "properties": {secret: {"type": "string"}}},
            }
        )
    rules.append(
        {
            "if": {"properties": {"type": {"const": NOT_HTTP.value}}, "required": ["type"]},
            "then": {"required": ["smtp"], "not": {"required": ["url"]}},
            "else": {"required": ["url"], "not": {"required": ["smtp"]}},
        }
    )
    rules.append(
        {
            "if": {"properties": {"type": {"const": TargetType.SLACK.value}}, "required": ["type"]},
            "then": {"properties": {"url_is_public": {"const": False}}},
        }
    )
    rules.append(
        {
            "if": {
                "properties": {"type": {"enum": sorted(t.value for t in NO_GROUPING)}},
                "required": ["type"],
            },
            "then": {"not": {"anyOf": [{"required": [k]} for k in GROUP_FIELDS]}},
        }
    )
    rules.append({"dependentRequired": {"group_by": ["group_wait_s"], "group_wait_s": ["group_by"]}})
    rules.append({"dependentRequired": {"group_max_alerts": ["group_by"]}})
    return rules


def targets_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a targets file."""
    schema = TargetsFile.model_json_schema()
    target = schema["$defs"]["TargetSpec"]
    target["allOf"] = _cross_field_rules()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "alert-publishing targets file",
    }


def render() -> str:
    """The schema as shipped: stable key order, a trailing newline."""
    return json.dumps(targets_json_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
