"""Targets from memory, as a ``TargetSource``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from publishing.target_config import parse_target
from publishing.targets import Target, check_target_set


class InMemoryTargetSource:
    """``TargetSource`` over targets held as the raw mappings a targets file holds, so that a
    bad edit can be made as easily as a good one; ``load`` validates them as a file's are."""

    def __init__(self, targets: Iterable[Mapping[str, Any]] = ()) -> None:
        self._raw = [dict(t) for t in targets]
        self._version = 0
        self.loads = 0

    def edit(self, targets: Iterable[Mapping[str, Any]]) -> None:
        """Swap in a new set, as an operator editing the targets file would."""
        self._raw = [dict(t) for t in targets]
        self._version += 1

    def signature(self) -> object:
        return self._version

    def load(self) -> list[Target]:
        self.loads += 1
        return check_target_set([parse_target(raw, f"targets[{i}]") for i, raw in enumerate(self._raw)])
