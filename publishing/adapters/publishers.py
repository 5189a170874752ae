"""The publisher the composition root hands the delivery service: one ``Publisher`` port over
every way a target is reached, chosen by the target's type (email over SMTP, the rest over
HTTP)."""

from __future__ import annotations

from collections.abc import Mapping

from publishing.alert import EnrichedAlert
from publishing.delivery import Publisher, Receipt
from publishing.targets import Target, TargetType


class RoutingPublisher:
    """Sends each job through the publisher of its target's type, ``default`` for the rest."""

    def __init__(self, default: Publisher, by_type: Mapping[TargetType, Publisher]) -> None:
        self._default = default
        self._by_type = dict(by_type)

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        return self._by_type.get(target.type, self._default).publish(target, enriched, job_id)
