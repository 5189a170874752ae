"""The inbound alert bodies (Alertmanager webhook v4 and enriched alerts), described as JSON
Schema by hand: their parser in ``publishing.alert`` is lenient in ways a model cannot state
(an empty or false value reads as absent). Their enums are the domain's and their cap is the
running ``Settings.max_alerts_per_request``."""

from __future__ import annotations

from typing import Any

from publishing.alert import AlertStatus, Severity

STRING = {"type": "string"}
DATE_TIME = {"type": "string", "format": "date-time"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
ALERT_STATUS = {"type": "string", "enum": [s.value for s in AlertStatus]}
SEVERITY = {"type": "string", "enum": [s.value for s in Severity]}
# Alertmanager's webhook version; the parser takes the number or the string.
WEBHOOK_VERSION = "4"
# Fields Alertmanager sends that the API accepts as they are and does not use.
UNUSED_WEBHOOK_FIELDS = (
    "receiver",
    "status",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "groupKey",
    "truncatedAlerts",
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null (which the parser reads as absent)."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


def lenient(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or an empty or false value (null, false, 0, "", [], {}), which the alert
    parser reads as absent."""
    return {"anyOf": [schema, {"enum": [None, False, 0, "", [], {}]}]}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


def alert_schemas(max_alerts: int) -> dict[str, Any]:
    """The component schemas of the two alert endpoints' bodies, at most ``max_alerts`` a request."""
    alert_list = {"type": "array", "items": ref("EnrichedAlert"), "minItems": 1, "maxItems": max_alerts}
    target_names = {"type": "array", "items": {**STRING, "minLength": 1}, "minItems": 1}
    return {
        "AlertmanagerAlert": obj(
            {
                "status": ALERT_STATUS,
                "labels": obj(
                    {"alertname": {**STRING, "minLength": 1}}, ["alertname"], additionalProperties=STRING
                ),
                "annotations": nullable(STRING_MAP),
                "startsAt": DATE_TIME,
                "endsAt": nullable(
                    {**STRING, "description": "RFC 3339; 0001-01-01T00:00:00Z means not ended."}
                ),
                "generatorURL": lenient(STRING),
                "fingerprint": nullable(
                    {**STRING, "minLength": 1, "description": "Derived from the labels when absent."}
                ),
            },
            ["status", "labels", "startsAt"],
        ),
        "AlertmanagerWebhook": obj(
            {
                "version": {
                    "enum": [WEBHOOK_VERSION, int(WEBHOOK_VERSION), None],
                    "description": f"Only version {WEBHOOK_VERSION} is accepted.",
                },
                "alerts": {
                    "type": "array",
                    "items": ref("AlertmanagerAlert"),
                    "minItems": 1,
                    "maxItems": max_alerts,
                    "description": f"At most {max_alerts} (PUBLISHING_MAX_ALERTS_PER_REQUEST); more is a 413.",
                },
                **{
                    name: {"description": "Sent by Alertmanager; accepted as is and not used."}
                    for name in UNUSED_WEBHOOK_FIELDS
                },
            },
            ["alerts"],
        ),
        "Classification": obj(
            {
                "severity": SEVERITY,
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "reasoning": lenient(STRING),
                "recommendations": lenient({"type": "array", "items": STRING}),
            },
            ["severity"],
        ),
        "EnrichedAlert": obj(
            {
                "alert": obj(
                    {
                        "fingerprint": nullable({**STRING, "minLength": 1}),
                        "alert_name": {
                            "description": "Used (a non-empty string) when labels.alertname is absent; else ignored."
                        },
                        "status": ALERT_STATUS,
                        "labels": nullable(STRING_MAP),
                        "annotations": nullable(STRING_MAP),
                        "starts_at": DATE_TIME,
                        "ends_at": nullable(DATE_TIME),
                        "generator_url": lenient(STRING),
                    },
                    ["status", "starts_at"],
                    description="labels.alertname or alert_name is required.",
                ),
                "classification": nullable(ref("Classification")),
                "enrichment_metadata": lenient({"type": "object"}),
            },
            ["alert"],
        ),
        "SubmitRequest": {
            "description": (
                "One enriched alert, {alerts: [...]}, or a list of them. `targets` (objects only) "
                f"names the targets to use instead of routing by their filters. At most {max_alerts} "
                "alerts a request (PUBLISHING_MAX_ALERTS_PER_REQUEST); more is a 413."
            ),
            "anyOf": [
                {"allOf": [ref("EnrichedAlert"), obj({"targets": target_names})]},
                obj({"alerts": alert_list, "targets": target_names}, ["alerts"]),
                alert_list,
            ],
        },
    }
