"""One module a scenario; each has ``NAME`` and ``run(options) -> figures``."""

from __future__ import annotations

from types import ModuleType

from bench.scenarios import ceiling, grouping, ingest, load, nodes, priority, reads, recovery, storm

SCENARIOS: dict[str, ModuleType] = {
    m.NAME: m for m in (ceiling, load, priority, ingest, recovery, reads, storm, grouping, nodes)
}
