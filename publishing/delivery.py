# Over 300 lines: one attempt from admission to verdict, and the DLQ rows it makes, read in order.
"""One delivery attempt of a job, decided in the domain: breaker admission, publishing, the
verdict to the breaker, the retry decision and the dead letter. The worker only carries out
what this returns (a Celery retry, a deferral, a DLQ write)."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from publishing.alert import AlertStatus, EnrichedAlert
from publishing.breaker import (
    Admit,
    BreakerConfig,
    BreakerDecision,
    BreakerState,
    BreakerStore,
    DeferReason,
    RateLimit,
    Transition,
)
from publishing.classification import ErrorType, classify
from publishing.dlq import DeadLetter
from publishing.errors import PublishError, RateLimitedError, UnknownTargetError
from publishing.grouping import (
    GroupMember,
    GroupStore,
    Membership,
    Requeue,
    Role,
    group_key,
    message_of,
    settlements,
)
from publishing.job import Job
from publishing.ordering import Gate, GateDecision, GateEntry, GateExit, OrderGate
from publishing.priority import Priority
from publishing.retry import GiveUp, RetryPolicy
from publishing.target_health import HealthEvent
from publishing.targets import Target, TargetRegistry
from publishing.tracking import truncate_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    """What a target answered to an accepted request."""

    status_code: int
    duration_s: float


class Publisher(Protocol):
    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt: ...


@dataclass(slots=True)
class Start:
    """An attempt about to start: marked (``StartMarks.mark_started``) in the attempt's first
    round trip, before anything is sent. ``count`` is what the mark answered: how often this
    attempt has started; past ``max_starts`` its message kills the worker and is not tried."""

    job_id: str
    attempt_key: str
    at: float
    max_starts: int
    count: int = 0


class StartMarks(Protocol):
    def mark_started(self, job_id: str, attempt_key: str, started_at: float) -> int: ...


class GatedAdmission(Protocol):
    def enter_and_acquire(
        self, entry: GateEntry, config: BreakerConfig, rate: RateLimit | None = None
    ) -> tuple[GateDecision, BreakerDecision | None]:
        """``OrderGate.enter`` and, when the gate says go, ``BreakerStore.acquire``, decided
        in one call (one Redis round trip an attempt instead of two)."""
        ...

    def start_and_admit(
        self, start: Start, entry: GateEntry, config: BreakerConfig, rate: RateLimit | None = None
    ) -> tuple[int, GateDecision, BreakerDecision | None]:
        """The attempt's start mark (its count first) and ``enter_and_acquire``, in the same
        round trip."""
        ...


@dataclass(frozen=True)
class Delivered:
    status_code: int
    duration_s: float
    recovered: bool = False  # this success closed the target's breaker


@dataclass(frozen=True)
class RetryScheduled:
    """Spend a retry: try again in ``delay_s``."""

    delay_s: float
    error_type: ErrorType
    error: str
    tripped: bool = False


@dataclass(frozen=True)
class Deferred:
    """Not admitted now (breaker, rate limit, pause): ask again in ``delay_s``, spending no
    retry."""

    delay_s: float
    state: BreakerState
    reason: DeferReason = DeferReason.BREAKER_OPEN


@dataclass(frozen=True)
class Failed:
    """Failed for good: the job goes to the DLQ."""

    error_type: ErrorType
    error: str
    tripped: bool = False


@dataclass(frozen=True)
class Rerouted:
    """The job's target is down: send it to the fallback target ``via`` instead."""

    via: str
    reason: str


@dataclass(frozen=True)
class Superseded:
    """A firing job whose alert has since been resolved: not sent (``publishing.ordering``)."""


@dataclass(frozen=True)
class GroupWait:
    """This job carries a storm group whose window is open: ask again in ``delay_s``
    (docs/design.md (Storm grouping))."""

    delay_s: float


@dataclass(frozen=True)
class Grouped:
    """This job's alert joined the group ``carrier`` sends: nothing more to send for it.
    ``settled``: that message was already delivered (the job's message came again)."""

    carrier: str
    settled: bool = False


@dataclass(frozen=True)
class Redelivered:
    """The same attempt has started ``starts`` times: its message kills the worker. Nothing
    was sent, and what its admission took (a probe slot, the gate's lease) is given back."""

    starts: int


Outcome = (
    Delivered | RetryScheduled | Deferred | Failed | Superseded | Rerouted | GroupWait | Grouped | Redelivered
)


def health_events(outcome: object) -> tuple[list[HealthEvent], str | None]:
    """What an attempt's outcome tells about its target's health, and the error to show
    (nothing for anything that is not an attempt's outcome)."""
    if isinstance(outcome, Delivered):
        return [HealthEvent.SUCCESS, *([HealthEvent.RECOVERED] if outcome.recovered else [])], None
    if isinstance(outcome, RetryScheduled | Failed):
        return [HealthEvent.FAILURE, *([HealthEvent.TRIPPED] if outcome.tripped else [])], outcome.error
    if isinstance(outcome, Deferred):
        kinds = {DeferReason.PAUSED: HealthEvent.PAUSED, DeferReason.RATE_LIMITED: HealthEvent.RATE_LIMITED}
        return [kinds.get(outcome.reason, HealthEvent.DEFERRED)], None
    if isinstance(outcome, Rerouted):
        return [HealthEvent.FALLBACK], None
    return [], None


@dataclass(frozen=True, slots=True, eq=False)
class DeliveryService:
    registry: TargetRegistry
    publisher: Publisher
    breakers: BreakerStore
    _: KW_ONLY
    order_gate: OrderGate | None = None
    admission: GatedAdmission | None = None
    starts: StartMarks | None = None
    groups: GroupStore | None = None
    requeue: Requeue | None = None
    retry_policy: Callable[[Job], RetryPolicy]
    breaker_config: BreakerConfig
    default_timeout_s: float
    clock: Callable[[], float]
    rng: Callable[[], float] = random.random

    def attempt(self, job: Job, exits: list[GateExit] | None = None, start: Start | None = None) -> Outcome:
        """``exits``: where a firing attempt's leave of the gate goes when the caller carries it
        out with the attempt's settlement (one round trip); without it the leave is made here.
        An attempt that raises leaves the gate here, before the error goes on. ``start``: the
        attempt's start mark, sent with its admission when that comes first, else on its own
        before anything else (docs/design.md (Job states))."""
        held: list[GateExit] = []
        try:
            outcome = self._attempt(job, held, start)
            if isinstance(outcome, Failed):
                via = self._fallback_for(job)
                if via is not None:
                    outcome = Rerouted(via, outcome.error)
            if isinstance(outcome, Failed | Rerouted) and self.groups is not None:
                self._dissolve(job)
        except BaseException:
            self._leave(held)
            raise
        if exits is None:
            self._leave(held)
        else:
            exits.extend(held)
        return outcome

    def _leave(self, exits: list[GateExit]) -> None:
        for e in exits:
            assert self.order_gate is not None
            self.order_gate.leave(e.target, e.fingerprint, e.job_id, delivered=e.delivered)

    def _dissolve(self, job: Job) -> None:
        """A job that fails for good or leaves for its fallback takes only its own alert: the
        members of a group it carries are each sent on their own (docs/design.md (Storm
        grouping)). Their tracking keeps their messages first, so the reconciler sends them
        if the enqueue here fails."""
        assert self.groups is not None
        released = self.groups.dissolve(job.via or job.target, job.job_id)
        if not released:
            return
        log.warning("job %s: its group of %d more alerts is sent alert by alert", job.job_id, len(released))
        if self.requeue is not None:
            try:
                self.requeue.enqueue_many([m.job for m in released])
            except Exception:
                log.exception(
                    "job %s: its group's members could not be enqueued; the reconciler will", job.job_id
                )

    def _fallback_for(self, job: Job) -> str | None:
        """The fallback a job of this priority may take, if its own target names one that is
        configured and enabled (a job already on a fallback takes no other)."""
        if job.via is not None:
            return None
        try:
            primary = self.registry.get(job.target)
        except UnknownTargetError:
            return None
        if job.priority.value not in primary.fallback_priorities:
            return None
        for name in primary.fallback:
            try:
                if self.registry.get(name).enabled:
                    return name
            except UnknownTargetError:
                continue
        return None

    def _attempt(self, job: Job, exits: list[GateExit], start: Start | None) -> Outcome:
        target, refused = self._target_of(job)
        grouped = target is not None and target.group is not None and self.groups is not None
        if start is not None and (refused is not None or grouped or not self._one_trip_admission):
            # No admission round trip to carry the mark: it goes alone, first.
            over = self._mark(start)
            if over is not None:
                return over
            start = None
        if refused is not None:
            return refused
        assert target is not None
        timeout_s = target.timeout_s or self.default_timeout_s
        lease_s = timeout_s + self.breaker_config.probe_lease_margin_s
        if grouped:
            return self._grouped_attempt(job, target, lease_s, exits)
        return self._gated_attempt(
            job,
            target,
            lease_s,
            lambda admitted: self._admitted_attempt(job, target, lease_s, decision=admitted),
            exits,
            True,
            start,
        )

    def _target_of(self, job: Job) -> tuple[Target | None, Failed | None]:
        """The job's target, or why the job fails for good before any admission."""
        try:
            target = self.registry.get(job.via or job.target)
        except UnknownTargetError as exc:
            return None, Failed(ErrorType.PERMANENT, f"{exc}: it is no longer configured")
        if not target.enabled:
            return target, Failed(ErrorType.PERMANENT, f"target {target.name!r} is disabled")
        if (
            job.deferred_since is not None
            and self.clock() - job.deferred_since >= self.breaker_config.max_deferral_s
        ):
            return target, Failed(ErrorType.TRANSIENT, "circuit open")
        return target, None

    @property
    def _one_trip_admission(self) -> bool:
        return self.order_gate is not None and self.admission is not None

    def _mark(self, start: Start) -> Redelivered | None:
        if self.starts is None:
            raise ValueError("an attempt was given a start mark but the service has no StartMarks")
        start.count = self.starts.mark_started(start.job_id, start.attempt_key, start.at)
        return Redelivered(start.count) if start.count > start.max_starts else None

    def _gated_attempt(
        self,
        job: Job,
        target: Target,
        lease_s: float,
        then: Callable[[BreakerDecision | None], Outcome],
        exits: list[GateExit],
        admit: bool = False,
        start: Start | None = None,
    ) -> Outcome:
        """``then`` behind the firing-before-resolved gate; a firing attempt's leave of the
        gate is added to ``exits``. ``start``: marked in the admission's round trip (``admit``)."""
        firing = job.alert.alert.status is AlertStatus.FIRING
        admitted: BreakerDecision | None = None
        over: Redelivered | None = None
        if self.order_gate is not None:
            entry = GateEntry(
                target.name,
                job.alert.alert.fingerprint,
                job.job_id,
                firing,
                job.submitted_at,
                lease_s,
                target.resolve_only_if_fired,
            )
            if admit and self.admission is not None and start is not None:
                start.count, gate, admitted = self.admission.start_and_admit(
                    start, entry, self.breaker_config, target.rate_limit
                )
                if start.count > start.max_starts:
                    # Nothing is sent: give back the probe slot the admission may have taken
                    # (the firing's lease of the gate is left below, undelivered).
                    over = Redelivered(start.count)
                    if isinstance(admitted, Admit):
                        self.breakers.release(target.name, admitted.probe_id)
                    if gate.gate is not Gate.GO:
                        return over
            elif admit and self.admission is not None:
                gate, admitted = self.admission.enter_and_acquire(
                    entry, self.breaker_config, target.rate_limit
                )
            else:
                gate = self.order_gate.enter(entry)
            if gate.gate is Gate.SUPERSEDED:
                return Superseded()
            if gate.gate is Gate.WAIT:
                return Deferred(gate.wait_s + self.rng() * 0.05, BreakerState.CLOSED, DeferReason.ORDERING)
        outcome: Outcome | None = None
        try:
            outcome = over if over is not None else then(admitted)
            return outcome
        finally:
            if self.order_gate is not None and firing:
                delivered = isinstance(outcome, Delivered)
                exits.append(GateExit(target.name, job.alert.alert.fingerprint, job.job_id, delivered))

    def _grouped_attempt(self, job: Job, target: Target, lease_s: float, exits: list[GateExit]) -> Outcome:
        """A job of a grouped target (docs/design.md (Storm grouping)). A new one passes the
        gate, then joins its group; one that has run before (a carrier back after its window or
        a deferral) is in its group already, past the gate: its group keeps its alert's order."""
        assert self.groups is not None and target.group is not None
        groups, grouping = self.groups, target.group
        key, member = group_key(grouping.by, job.alert), GroupMember.of(job)
        if job.deferrals or job.retries:
            known = groups.join(target.name, key, member, grouping.wait_s, join=False)
            if known.role is not Role.NEW:
                return self._as_member(job, target, lease_s, known)

        def join() -> Outcome:
            return self._as_member(
                job, target, lease_s, groups.join(target.name, key, member, grouping.wait_s)
            )

        return self._gated_attempt(job, target, lease_s, lambda _: join(), exits)

    def _as_member(self, job: Job, target: Target, lease_s: float, membership: Membership) -> Outcome:
        role = membership.role
        if role in (Role.OPENED, Role.WAITING):
            return GroupWait(membership.wait_s)
        if role is Role.DONE and not membership.carrier:
            return Superseded()  # in its group, by a later job of the same alert
        if role in (Role.JOINED, Role.DONE):
            return Grouped(membership.carrier, settled=role is Role.DONE)
        if role is Role.ORDER_WAIT:
            return Deferred(membership.wait_s + self.rng() * 0.05, BreakerState.CLOSED, DeferReason.ORDERING)
        if role is Role.DUE:
            return self._admitted_attempt(job, target, lease_s, group_id=membership.carrier)
        # SOLO: its group failed; NEW cannot come from a join.
        return self._admitted_attempt(job, target, lease_s)

    def _admitted_attempt(
        self,
        job: Job,
        target: Target,
        lease_s: float,
        group_id: str | None = None,
        decision: BreakerDecision | None = None,
    ) -> Outcome:
        """``decision``: the admission already decided with the gate, if it was."""
        config = self.breaker_config
        if decision is None:
            decision = self.breakers.acquire(target.name, config, lease_s, target.rate_limit)
        if not isinstance(decision, Admit):
            down = decision.reason in (DeferReason.BREAKER_OPEN, DeferReason.PROBE_BUSY)
            via = self._fallback_for(job) if down else None
            if via is not None and decision.down_for_s >= target.fallback_after_s:
                return Rerouted(via, f"{target.name} down for {decision.down_for_s:.0f} s")
            # Jitter spreads the deferred jobs out; never more than the wait itself, so a
            # rate-limited job does not sleep a second for a 0.2 s token.
            jitter = self.rng() * min(self.retry_policy(job).jitter_s, max(decision.wait_s, 0.05))
            wait_s = decision.wait_s + jitter
            if via is not None:
                # A job with a fallback wakes no later than its fallback is due, not when the
                # breaker half-opens: a page does not wait a whole open time for it.
                wait_s = min(wait_s, target.fallback_after_s - decision.down_for_s)
            return Deferred(wait_s, decision.state, decision.reason)
        members: list[GroupMember] | None = None
        payload: EnrichedAlert = job.alert
        if group_id is not None and target.group is not None and self.groups is not None:
            # Taken only once admitted: while the target is rate limited or paused the group
            # stays open and keeps growing.
            members = self.groups.take(target.name, group_id)
            payload = (message_of(members, target.group.by) if members else None) or job.alert
        try:
            receipt = self.publisher.publish(target, payload, job.job_id)
        except PublishError as exc:
            return self._failed_attempt(job, target, exc, decision.probe_id)
        except Exception as exc:
            # Anything else is a bug of ours or a library's; retried like an unknown error
            # (bounded by max_retries), never allowed to lose the job.
            log.exception("unexpected error publishing job %s", job.job_id)
            return self._failed_attempt(job, target, exc, decision.probe_id)
        if members and group_id is not None:
            self._finish_group(job, target, group_id, members, receipt)
        if decision.clean:
            # Closed with nothing counted: a success would change nothing (one round trip saved).
            return Delivered(receipt.status_code, receipt.duration_s)
        transition = self.breakers.record_success(target.name, config, decision.probe_id)
        return Delivered(receipt.status_code, receipt.duration_s, transition is Transition.RECOVERED)

    def _finish_group(
        self, job: Job, target: Target, group_id: str, members: list[GroupMember], receipt: Receipt
    ) -> None:
        assert self.groups is not None
        done = settlements(job, members, receipt.status_code, receipt.duration_s, self.clock())
        self.groups.finish(target.name, group_id, done)
        if self.order_gate is not None and target.resolve_only_if_fired:
            # Each firing carried is delivered: its resolve may follow (docs/design.md (Firing
            # before resolved)).
            for m in members:
                if m.firing and not m.superseded:
                    self.order_gate.leave(target.name, m.fingerprint, m.job_id, delivered=True)

    def _failed_attempt(self, job: Job, target: Target, exc: Exception, probe_id: str | None) -> Outcome:
        error_type = classify(exc)
        message = truncate_error(target.redact(f"{type(exc).__name__}: {exc}"))
        if isinstance(exc, RateLimitedError) and exc.retry_after_s:
            # The target told us when to come back: pause it for every worker, spend no
            # retry, and do not count it against the breaker (it is up, only busy).
            pause_s = min(exc.retry_after_s, self.retry_policy(job).retry_after_max_s)
            self.breakers.pause(target.name, pause_s)
            self.breakers.release(target.name, probe_id)
            return Deferred(pause_s + self.rng() * 0.1, BreakerState.CLOSED, DeferReason.PAUSED)
        if error_type is ErrorType.PERMANENT:
            self.breakers.release(target.name, probe_id)
            return Failed(error_type, message)
        tripped = (
            self.breakers.record_failure(target.name, self.breaker_config, probe_id) is Transition.TRIPPED
        )
        retry_after = exc.retry_after_s if isinstance(exc, RateLimitedError) else None
        decision = self.retry_policy(job).decide(
            error_type, job.retries, retry_after_s=retry_after, rng=self.rng
        )
        if isinstance(decision, GiveUp):
            return Failed(error_type, message, tripped)
        return RetryScheduled(decision.delay_s, error_type, message, tripped)

    def letter_for(self, job: Job) -> DeadLetter:
        """The DLQ row of a job that failed for good (``job.failure``); the target's
        configuration in it is redacted, and it says when the job failed, not when the row
        could be written."""
        assert job.failure is not None
        try:
            target = self.registry.get(job.target)
            target_type, config = target.type.value, target.to_public_dict()
        except UnknownTargetError:
            target_type, config = "unknown", {"name": job.target}
        failed_at = job.failure.get("failed_at")
        return DeadLetter(
            id=str(uuid.uuid4()),
            job_id=job.job_id,
            fingerprint=job.alert.alert.fingerprint,
            target_name=job.target,
            target_type=target_type,
            enriched_alert=job.alert.to_dict(),
            target_config=config,
            error_message=str(job.failure.get("error", "")),
            error_type=ErrorType(job.failure.get("error_type", ErrorType.UNKNOWN.value)),
            retry_count=job.retries,
            last_retry_at=datetime.fromtimestamp(job.last_retry_at, UTC) if job.last_retry_at else None,
            priority=job.priority,
            failed_at=datetime.fromtimestamp(
                float(failed_at) if failed_at is not None else self.clock(), UTC
            ),
            replayed_from=job.replayed_from,
            delivered_via=job.via,
        )


def unreadable_letter(message: Any, job_id: str, error: str, now: float) -> DeadLetter:
    """The DLQ row of a message that is not a job we can read (a newer or broken producer):
    kept as it came, so an operator can see it, never silently dropped."""
    raw: dict[str, Any] = message if isinstance(message, dict) else {"message": message}
    alert = raw.get("alert")
    enriched: dict[str, Any] = alert if isinstance(alert, dict) else {"raw": raw}
    inner = enriched.get("alert")
    priority = str(raw.get("priority"))
    target = str(raw.get("target", "unknown"))
    return DeadLetter(
        id=str(uuid.uuid4()),
        job_id=job_id,
        fingerprint=str(inner.get("fingerprint", "")) if isinstance(inner, dict) else "",
        target_name=target,
        target_type="unknown",
        enriched_alert=enriched,
        target_config={"name": target},
        error_message=f"the job message could not be read: {error}"[:500],
        error_type=ErrorType.PERMANENT,
        retry_count=0,
        priority=Priority(priority) if priority in {p.value for p in Priority} else Priority.MEDIUM,
        failed_at=datetime.fromtimestamp(now, UTC),
    )
