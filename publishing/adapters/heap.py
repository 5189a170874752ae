"""What a process built while starting, kept out of the cyclic garbage collector's passes.

An API or worker process holds about 100,000 container objects once started (modules,
classes, Celery's and SQLAlchemy's tables, compiled templates). CPython's full collection
walks every one of them, and took 40 to 70 ms on a 2-core machine: every request and every
job of the process stands still meanwhile, which is most of a delivery's p99. Those objects
live as long as the process, so they are moved to the permanent generation once start-up is
done; full collections then walk only what was built since. A start-up object that later
becomes cyclic garbage is never freed, which costs at most what start-up built."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left as garbage, then freeze the rest; how many objects are now
    frozen. Called again later (a prefork child after its own start), it freezes what was
    built since."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
