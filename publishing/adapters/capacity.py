"""How many jobs this process runs at once, for the pools of connections it keeps: one in a
prefork child, the whole concurrency in a worker on an I/O pool (gevent, threads), unknown
elsewhere (the API). The worker says so at start (``workers.observability``), before any
client is built."""

from __future__ import annotations

# Connections a process needs beyond its job slots: the consumer's guard writing a DLQ row,
# the reconciler and history threads, a scrape.
HEADROOM = 8

_slots: int | None = None


def set_job_slots(slots: int) -> None:
    if slots < 1:
        raise ValueError(f"a process runs at least one job at a time, not {slots}")
    global _slots
    _slots = slots


def job_slots() -> int | None:
    """The jobs this process runs at once, or None when it is not a worker."""
    return _slots
