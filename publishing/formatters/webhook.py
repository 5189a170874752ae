"""The generic webhook payload: the alert as flat JSON, with its classification and job id; a
group's alerts in one ``alerts`` array."""

from __future__ import annotations

from typing import Any

from publishing.alert import EnrichedAlert
from publishing.grouping import AlertGroup
from publishing.targets import Target


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    classification = enriched.classification
    return {
        **enriched.alert.to_dict(),
        "classification": classification.to_dict() if classification is not None else None,
        "job_id": job_id,
    }


def build_group(target: Target, group: AlertGroup, job_id: str) -> dict[str, Any]:
    """Many alerts in one body: the group's labels and every alert (firing first) as the
    single-alert body has it, with its own job's id, in ``alerts``; ``job_id`` is the carrier's
    (the request's ``Idempotency-Key``)."""
    ids = group.job_ids or (None,) * len(group.members)
    return {
        "group": dict(group.group_labels),
        "alerts": [
            build(target, a, member_id or job_id) for a, member_id in zip(group.members, ids, strict=True)
        ],
        "job_id": job_id,
    }
