"""The reconciler's decisions (``publishing.reconcile``): which lost jobs to send again and
which stuck replay claims to release."""

from __future__ import annotations

import pytest

from publishing.reconcile import Candidate, ReplayClaim, claims_to_release, to_resend
from publishing.tracking import JobState

NOW, GRACE = 1_000.0, 60.0


def candidate(state: JobState = JobState.QUEUED, age_s: float = 61, **more: object) -> Candidate:
    return Candidate("j", state, NOW - age_s, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("job", "present", "resent"),
    [
        pytest.param(candidate(), set(), True, id="queued-and-missing"),
        pytest.param(candidate(JobState.RETRYING), set(), True, id="retrying-and-missing"),
        pytest.param(candidate(JobState.DEFERRED), set(), True, id="deferred-and-missing"),
        pytest.param(candidate(), {"j"}, False, id="in-a-queue-or-unacked"),
        pytest.param(candidate(age_s=59), set(), False, id="within-the-grace-period"),
        pytest.param(candidate(age_s=60), set(), True, id="grace-period-over"),
        pytest.param(candidate(JobState.DEFERRED, age_s=100, wait_s=50), set(), False, id="countdown-not-over"),
        pytest.param(candidate(JobState.DEFERRED, age_s=111, wait_s=50), set(), True, id="countdown-over"),
        pytest.param(candidate(has_message=False), set(), False, id="no-message-kept"),
        pytest.param(candidate(JobState.PROCESSING), set(), False, id="on-a-worker"),
        pytest.param(candidate(JobState.SUCCEEDED), set(), False, id="finished"),
        pytest.param(candidate(JobState.FAILED), set(), False, id="failed"),
    ],
)  # fmt: skip
def test_which_jobs_are_sent_again(job: Candidate, present: set[str], resent: bool) -> None:
    assert to_resend([job], present, NOW, GRACE) == (["j"] if resent else [])


def test_several_at_once_keep_their_order() -> None:
    jobs = [Candidate(i, JobState.QUEUED, 0.0) for i in ("c", "a", "b")]
    assert to_resend(jobs, {"a"}, NOW, GRACE) == ["c", "b"]


@pytest.mark.parametrize(
    ("tracked", "present", "age_s", "released"),
    [
        pytest.param(set(), set(), 61, True, id="job-nowhere"),
        pytest.param({"job"}, set(), 61, False, id="job-tracked"),
        pytest.param(set(), {"job"}, 61, False, id="job-on-the-broker"),
        pytest.param(set(), set(), 59, False, id="within-the-grace-period"),
    ],
)
def test_which_replay_claims_are_released(
    tracked: set[str], present: set[str], age_s: float, released: bool
) -> None:
    claim = ReplayClaim("row", "job", NOW - age_s)
    assert claims_to_release([claim], tracked, present, NOW, GRACE) == ([claim] if released else [])


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(candidate(JobState.DEFERRED, age_s=400, wait_s=30), id="deferred"),
        pytest.param(candidate(JobState.RETRYING, age_s=400, wait_s=30), id="retrying"),
        pytest.param(candidate(JobState.QUEUED, age_s=400), id="queued"),
    ],
)
def test_a_parked_job_is_on_the_broker_however_long_it_has_waited(job: Candidate) -> None:
    assert to_resend([job], set(), NOW, GRACE, parked={"j"}) == []
    assert to_resend([job], set(), NOW, GRACE, parked={"other"}) == ["j"]


def test_a_replay_claim_whose_job_is_parked_is_kept() -> None:
    claim = ReplayClaim("row", "job", NOW - 600)
    assert claims_to_release([claim], set(), set(), NOW, GRACE, parked={"job"}) == []
    assert claims_to_release([claim], set(), set(), NOW, GRACE, parked=set()) == [claim]
