# Over 300 lines: every metric is declared here once, with the scrape-time collector that reads them.
"""Every Prometheus metric, named once (docs/operations.md), and the scrape-time collector for what
lives in Redis and the database (queue depth, breakers, DLQ size).

Counters and histograms are observed where the event happens; prefork children write them
through prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), which every
entry point sets before this module is imported.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import KW_ONLY, dataclass

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from publishing.adapters.redis.queues import queue_depths
from publishing.breaker import BreakerStore, DeferReason
from publishing.classification import ErrorType
from publishing.dlq import DeadLetterRepository, ReplayResult
from publishing.errors import DatabaseUnavailableError
from publishing.priority import Priority
from publishing.submission import SubmissionResult
from publishing.targets import Target, TargetRegistry
from publishing.tracking import JobState, JobTracker

log = logging.getLogger(__name__)

NS = "alert_history_publishing"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def _latency(name: str, documentation: str, labels: list[str]) -> Histogram:
    """A histogram of seconds; all share ``LATENCY_BUCKETS``, so one dashboard reads them alike."""
    return Histogram(f"{NS}_{name}", documentation, labels, buckets=LATENCY_BUCKETS)


def _last_seen(name: str, documentation: str) -> Gauge:
    """A per-target timestamp; the fleet's newest wins across worker processes."""
    return Gauge(f"{NS}_{name}", documentation, ["target"], multiprocess_mode="max")


# --- the original's metrics, observed in the worker or the API ---
QUEUE_SUBMISSIONS = Counter(
    f"{NS}_queue_submissions_total", "Jobs submitted, by priority and result", ["priority", "result"]
)
JOBS_PROCESSED = Counter(
    f"{NS}_jobs_processed_total", "Attempt outcomes by target and resulting state", ["target", "state"]
)
JOB_DURATION = _latency("job_duration_seconds", "Duration of one delivery attempt", ["target", "priority"])
JOB_WAIT = _latency("job_wait_time_seconds", "Time from submission to the first attempt", ["priority"])
RETRY_ATTEMPTS = Counter(f"{NS}_retry_attempts_total", "Retries scheduled", ["target", "error_type"])
WORKERS_ACTIVE = Gauge(f"{NS}_workers_active", "Worker processes running a job", multiprocess_mode="livesum")
WORKERS_IDLE = Gauge(f"{NS}_workers_idle", "Worker processes waiting for a job", multiprocess_mode="livesum")
WORKER_PROCESSING = _latency(
    "worker_processing_duration_seconds", "Task run time by worker node", ["worker_id"]
)
DLQ_WRITES = Counter(f"{NS}_dlq_writes_total", "Rows written to the DLQ", ["target", "error_type"])
DLQ_REPLAYS = Counter(f"{NS}_dlq_replays_total", "DLQ replays by outcome", ["target", "result"])

# --- beyond the original ---
ATTEMPTS = Counter(
    f"{NS}_attempts_total",
    "Delivery attempts by attempt number and outcome",
    ["target", "attempt", "outcome"],
)
END_TO_END = _latency(
    "end_to_end_latency_seconds", "From receipt by the API to delivery", ["priority", "target"]
)
DEFERRALS = Counter(
    f"{NS}_deferrals_total",
    "Attempts not made now: open breaker, busy probe slot, rate limit, pause, ordering",
    ["target", "reason"],
)
LAST_SUCCESS = _last_seen("target_last_success_timestamp_seconds", "When a target last took a job")
LAST_FAILURE = _last_seen("target_last_failure_timestamp_seconds", "When an attempt to a target last failed")
FALLBACKS = Counter(f"{NS}_fallback_reroutes_total", "Jobs sent to a fallback target", ["target", "via"])
DEDUP_HITS = Counter(f"{NS}_dedup_hits_total", "Submissions answered with an existing job", ["target"])
UNROUTED = Counter(f"{NS}_unrouted_alerts_total", "Alerts that no target's filter matched")
EVENTS_SENT = Counter(f"{NS}_events_sent_total", "Operational events enqueued to events targets", ["type"])
EVENTS_SUPPRESSED = Counter(
    f"{NS}_events_suppressed_total", "Events about an events target itself: logged, never sent", ["type"]
)
HISTORY_FLUSHED = Counter(f"{NS}_history_flushed_total", "Attempt records moved to the history database")

MAX_ATTEMPT_LABEL = 6  # attempts past the sixth share the label "6+", keeping the series bounded


def attempt_label(attempt: int) -> str:
    return str(attempt) if attempt < MAX_ATTEMPT_LABEL else f"{MAX_ATTEMPT_LABEL}+"


# The registries whose targets' series exist; re-checked at every scrape, so a target that a
# reload adds shows its zeros too.
_followed: list[tuple[weakref.ref[TargetRegistry], list[frozenset[tuple[str, tuple[str, ...]]]]]] = []
_follow_lock = threading.Lock()


def initialise_series(registry: TargetRegistry | Iterable[Target]) -> None:
    """Every labelled series at 0 for each known label value (targets, priorities, error types,
    states, results, reasons), so dashboards and alert rules read 0 rather than no data before
    the first event. A registry is followed (while something else holds it): its targets are
    initialised again at a scrape after it reloads."""
    if isinstance(registry, TargetRegistry):
        with _follow_lock:
            if not any(followed() is registry for followed, _ in _followed):
                _followed.append((weakref.ref(registry), [frozenset()]))
        _refresh_series()
        return
    _initialise(list(registry))


def _refresh_series() -> None:
    with _follow_lock:
        _followed[:] = [(ref, seen) for ref, seen in _followed if ref() is not None]
        followed = [(ref(), seen) for ref, seen in _followed]
    for registry, seen in followed:
        if registry is None:
            continue
        targets = registry.all()
        signature = frozenset((t.name, tuple(t.fallback)) for t in targets)
        if signature != seen[0]:
            _initialise(targets)
            seen[0] = signature


def _initialise(targets: list[Target]) -> None:
    priorities = [p.value for p in Priority]
    for priority in priorities:
        QUEUE_SUBMISSIONS.labels(priority, "accepted")
        QUEUE_SUBMISSIONS.labels(priority, "duplicate")
        JOB_WAIT.labels(priority)
    QUEUE_SUBMISSIONS.labels("none", "rejected")
    attempts = [attempt_label(n) for n in range(1, MAX_ATTEMPT_LABEL + 1)]
    for target in targets:
        name = target.name
        for state in JobState:
            JOBS_PROCESSED.labels(name, state.value)
        for priority in priorities:
            JOB_DURATION.labels(name, priority)
            END_TO_END.labels(priority, name)
        for error_type in ErrorType:
            RETRY_ATTEMPTS.labels(name, error_type.value)
            DLQ_WRITES.labels(name, error_type.value)
        for result in ReplayResult:
            DLQ_REPLAYS.labels(name, result.value)
        for attempt in attempts:
            for outcome in ("success", "failure"):
                ATTEMPTS.labels(name, attempt, outcome)
        for reason in DeferReason:
            DEFERRALS.labels(name, reason.value)
        for via in target.fallback:
            FALLBACKS.labels(name, via)
        DEDUP_HITS.labels(name)


@dataclass(frozen=True, slots=True, eq=False)
class FleetCollector(Collector):
    """Gauges read at scrape time from Redis and the database, so every replica reports the
    fleet's truth rather than its own view."""

    client: redis.Redis
    registry: TargetRegistry
    breakers: BreakerStore
    dead_letters: DeadLetterRepository | None
    tracker: JobTracker | None = None
    _: KW_ONLY
    queue_capacity: int = 10_000
    clock: Callable[[], float] = time.time

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._queues()
            yield from self._breaker_metrics()
            yield from self._deferred()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unavailable: %s", exc)
        yield from self._dlq()

    def _queues(self) -> Iterator[Metric]:
        depths = queue_depths(self.client, with_age=True, now=self.clock())
        size = GaugeMetricFamily(f"{NS}_queue_size", "Jobs waiting in each queue", labels=["priority"])
        util = GaugeMetricFamily(
            f"{NS}_queue_capacity_utilization", "Queue depth over the nominal capacity", labels=["priority"]
        )
        age = GaugeMetricFamily(
            f"{NS}_oldest_pending_age_seconds",
            "Age of the oldest job waiting in each queue",
            labels=["priority"],
        )
        for queue in depths:
            size.add_metric([queue.queue], queue.depth)
            util.add_metric([queue.queue], queue.depth / self.queue_capacity)
            age.add_metric([queue.queue], queue.oldest_age_s or 0.0)
        yield from (size, util, age)

    def _breaker_metrics(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            f"{NS}_circuit_breaker_state", "0 closed, 1 open, 2 half-open", labels=["target"]
        )
        trips = CounterMetricFamily(
            f"{NS}_circuit_breaker_trips", "Times the breaker opened", labels=["target"]
        )
        recoveries = CounterMetricFamily(
            f"{NS}_circuit_breaker_recoveries", "Times the breaker closed after probing", labels=["target"]
        )
        for target in self.registry.all():
            status = self.breakers.status(target.name)
            state.add_metric([target.name], int(status.state))
            trips.add_metric([target.name], status.trips)
            recoveries.add_metric([target.name], status.recoveries)
        yield from (state, trips, recoveries)

    def _deferred(self) -> Iterator[Metric]:
        if self.tracker is None:
            return
        counts = self.tracker.count_by_state()
        yield GaugeMetricFamily(
            f"{NS}_jobs_deferred", "Jobs waiting on an open breaker", value=counts.get("deferred", 0)
        )

    def _dlq(self) -> Iterator[Metric]:
        if self.dead_letters is None:
            return
        size = GaugeMetricFamily(f"{NS}_dlq_size", "Rows in the DLQ", labels=["target"])
        try:
            counts = self.dead_letters.count_by_target()
        except DatabaseUnavailableError as exc:
            log.warning("metrics: database unavailable: %s", exc)
            return
        for target in {t.name for t in self.registry.all()} | set(counts):
            size.add_metric([target], counts.get(target, 0))
        yield size


class RetrySuccessRate(Collector):
    """``retry_success_rate{target,attempt}``: the share of attempts numbered ``attempt``
    that succeeded, derived at scrape time from ``attempts_total``."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        totals: dict[tuple[str, str], dict[str, float]] = {}
        for metric in self._source.collect():
            if metric.name != f"{NS}_attempts":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["target"], sample.labels["attempt"])
                    totals.setdefault(key, {})[sample.labels["outcome"]] = sample.value
        rate = GaugeMetricFamily(
            f"{NS}_retry_success_rate",
            "Share of attempts at this number that succeeded",
            labels=["target", "attempt"],
        )
        for (target, attempt), outcomes in sorted(totals.items()):
            seen = sum(outcomes.values())
            rate.add_metric([target, attempt], outcomes.get("success", 0) / seen if seen else 0.0)
        yield rate


def process_registry() -> CollectorRegistry:
    """What this process (and, in multiprocess mode, its siblings) observed. The mode is the
    one prometheus_client chose when it was imported, whatever the environment says now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and values.ValueClass is not values.MutexValue:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def exposition_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """Observed metrics, the derived retry success rate, and ``extra`` scrape-time collectors."""
    source = process_registry()
    registry = CollectorRegistry()
    registry.register(_Forward(source))
    registry.register(RetrySuccessRate(source))
    for collector in extra:
        registry.register(collector)
    return registry


def render(extra: Iterable[Collector] = ()) -> bytes:
    return generate_latest(exposition_registry(extra))


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            _refresh_series()
        except Exception:  # a scrape must answer even when the targets cannot be read
            log.warning("metrics: target series not refreshed", exc_info=True)
        return iter(self._source.collect())


def observe_submission(result: SubmissionResult) -> None:
    """Count a submission's jobs, duplicates and unrouted alerts (called by the API)."""
    for job in result.jobs:
        QUEUE_SUBMISSIONS.labels(job.priority.value, "duplicate" if job.duplicate else "accepted").inc()
        if job.duplicate:
            DEDUP_HITS.labels(job.target).inc()
    if result.unrouted:
        UNROUTED.inc(len(result.unrouted))


def observe_rejected_submission(count: int = 1) -> None:
    QUEUE_SUBMISSIONS.labels("none", "rejected").inc(count)
