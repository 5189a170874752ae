"""The reconciler's pass on Redis (docs/design.md (Reconciler)): one pass at a time fleet-wide
(a lock), the waiting jobs read from tracking's state indexes, the job ids on the broker read
from the parked jobs, kombu's queues and its ``unacked`` hash, and the decisions of ``publishing.reconcile``
carried out: a lost job's kept message sent again under its id, a stuck replay claim released.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from publishing.adapters.redis.client import load_script
from publishing.adapters.redis.tracking import RedisJobTracker
from publishing.dlq import MAX_PAGE, DeadLetterRepository, DLQFilter
from publishing.errors import PublishingError
from publishing.job import Job
from publishing.parking import ParkingLot
from publishing.reconcile import WAITING_STATES, Candidate, ReplayClaim, claims_to_release, to_resend
from publishing.routing import QUEUES
from publishing.submission import Enqueuer
from publishing.tracking import JobState

log = logging.getLogger(__name__)

# Kombu's Redis transport keeps messages taken but not acknowledged in this hash.
UNACKED_KEY = "unacked"
READ_CHUNK = 1000
# A message moves between a queue and ``unacked`` in a few milliseconds (a fetch, a restore):
# a job missing from one look is looked for again this much later before it is sent.
CONFIRM_S = 1.0
# Replayed rows read a pass, newest first (MAX_PAGE a page).
CLAIM_PAGES = 10


@dataclass
class Report:
    resent: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


def message_id(raw: bytes | str) -> str | None:
    """The task id of a kombu message as stored in a queue (``{"headers": {"id": …}}``) or
    in ``unacked`` (``[message, exchange, routing key]``); None for anything else."""
    try:
        data = json.loads(raw)
        if isinstance(data, list):
            data = data[0]
        return str(data["headers"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class RedisReconciler:
    def __init__(
        self,
        client: redis.Redis,
        tracker: RedisJobTracker,
        enqueuer: Enqueuer,
        dead_letters: DeadLetterRepository | None,
        *,
        parking: ParkingLot | None = None,
        prefix: str,
        grace_s: float,
        lock_s: float = 120.0,
        confirm_s: float = CONFIRM_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._tracker = tracker
        self._enqueuer = enqueuer
        self._dead_letters = dead_letters
        self._parking = parking
        self._lock_key = f"{prefix}:reconciler:lock"
        self._grace_s = grace_s
        self._lock_ms = int(lock_s * 1000)
        self._confirm_s = confirm_s
        self._sleep = sleep
        self._lock = load_script(client, "reconcile_lock")
        self._unlock = load_script(client, "reconcile_unlock")

    def run_once(self) -> Report | None:
        """One pass; None when another process's pass holds the lock."""
        # A pass that Redis's restart cut short could not release its lock, and the append-only
        # file kept it: the lock names the server's run (new at each start), so the first pass
        # after a restart takes it over instead of leaving the reconciler off for ``lock_s``
        # just when the broker may have lost a message.
        run_id = self._run_id()
        token = f"{run_id}|{uuid.uuid4().hex}"
        if not self._lock(keys=[self._lock_key], args=[token, self._lock_ms, run_id]):
            return None
        try:
            report = Report()
            report.resent = self._resend_lost()
            if self._dead_letters is not None:
                report.released = self._release_claims()
            return report
        finally:
            self._unlock(keys=[self._lock_key], args=[token])

    def _run_id(self) -> str:
        """The Redis server's run id, new each time it starts (and on a failover's replica);
        empty when INFO is refused, and then a left lock is waited out."""
        try:
            return str(self._client.info("server").get("run_id", ""))
        except redis.ResponseError:
            return ""

    def _now(self) -> float:
        seconds, micros = self._client.time()
        return float(seconds) + micros / 1_000_000

    def present(self) -> set[str]:
        """Job ids with a message in a queue or held unacknowledged by a worker. Queues are
        read from their head in chunks: a push shifts what is left to read, it never hides
        it; ``unacked`` is read after them, where a fetched message goes next."""
        found: set[str] = set()
        for queue in QUEUES:
            start = 0
            while True:
                chunk = self._client.lrange(queue, start, start + READ_CHUNK - 1)
                found.update(i for i in map(message_id, chunk) if i)
                start += len(chunk)
                if len(chunk) < READ_CHUNK:
                    break
        for _, raw in self._client.hscan_iter(UNACKED_KEY, count=READ_CHUNK):
            job_id = message_id(raw)
            if job_id:
                found.add(job_id)
        return found

    def parked(self) -> set[str]:
        """Job ids parked or being moved back. Read before the queues: a job leaves the lot for
        a queue, and reaches the lot again only through a worker, after the grace period."""
        return self._parking.parked_ids() if self._parking is not None else set()

    def _candidates(self, job_ids: Iterable[str] | None = None) -> list[Candidate]:
        wanted = set(job_ids) if job_ids is not None else None
        found = []
        for entry in self._tracker.entries_in(WAITING_STATES):
            if wanted is not None and entry["id"] not in wanted:
                continue
            found.append(
                Candidate(
                    job_id=entry["id"],
                    state=JobState(entry.get("state", JobState.QUEUED.value)),
                    updated_at=float(entry.get("updated_at") or 0.0),
                    wait_s=float(entry.get("wait_s") or 0.0),
                    has_message=bool(entry.get("has_message")),
                )
            )
        return found

    def _resend_lost(self) -> list[str]:
        candidates = self._candidates()
        if not candidates:
            return []
        parked = self.parked()
        lost = to_resend(candidates, self.present(), self._now(), self._grace_s, parked)
        if not lost:
            return []
        # Looked for again a moment later, with tracking read again: a job that moved on
        # (a worker took it, it finished) in between is left alone.
        self._sleep(self._confirm_s)
        again = self._candidates(lost)
        parked = self.parked()
        lost = to_resend(again, self.present(), self._now(), self._grace_s, parked)
        resent = []
        for job_id in lost:
            message = self._tracker.message(job_id)
            if message is None:
                continue
            try:
                job = Job.from_message(message)
            except Exception:
                log.error("job %s: its kept message cannot be read; not sent again", job_id)
                continue
            self._enqueuer.enqueue(job)
            self._tracker.update(job_id, reconciled=self._now(), wait_s=0)
            log.warning(
                "job %s: its message was in no queue and held by no worker; sent again",
                job_id,
                extra={"job_id": job_id, "target": job.target, "priority": job.priority.value},
            )
            resent.append(job_id)
        return resent

    def _replay_claims(self) -> list[ReplayClaim]:
        assert self._dead_letters is not None
        claims = []
        for page in range(CLAIM_PAGES):
            letters, total = self._dead_letters.read(DLQFilter(replayed=True), MAX_PAGE, page * MAX_PAGE)
            for letter in letters:
                if letter.replay_result is None and letter.replay_job_id and letter.replayed_at:
                    claimed_at = letter.replayed_at.replace(tzinfo=letter.replayed_at.tzinfo or UTC)
                    claims.append(ReplayClaim(letter.id, str(letter.replay_job_id), claimed_at.timestamp()))
            if (page + 1) * MAX_PAGE >= total:
                break
        return claims

    def _release_claims(self) -> list[str]:
        assert self._dead_letters is not None
        try:
            claims = self._replay_claims()
            now = self._now()
            old = [c for c in claims if now - c.claimed_at >= self._grace_s]
            if not old:
                return []
            tracked = self._tracker.tracked(c.job_id for c in old)
            parked = self.parked()
            stuck = claims_to_release(old, tracked, self.present(), now, self._grace_s, parked)
            for claim in stuck:
                self._dead_letters.release_claim(claim.letter_id, claim.job_id, datetime.now(UTC))
                log.warning(
                    "dead letter %s: its replay job %s never reached the broker; claim released",
                    claim.letter_id,
                    claim.job_id,
                )
        except PublishingError as exc:
            log.warning("replay claims not reconciled: %s", type(exc).__name__)
            return []
        return [c.letter_id for c in stuck]
