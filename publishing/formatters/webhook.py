"""The generic webhook payload: the alert as flat JSON, with its classification and job id."""

from __future__ import annotations

from typing import Any

from publishing.alert import EnrichedAlert
from publishing.targets import Target


def build(target: Target, enriched: EnrichedAlert, job_id: str) -> dict[str, Any]:
    classification = enriched.classification
    return {
        **enriched.alert.to_dict(),
        "classification": classification.to_dict() if classification is not None else None,
        "job_id": job_id,
    }
