"""The jobs page: find a tracked job by id, alert name or fingerprint, and a job's state and
timeline. Tracking indexes jobs by recency, state, target and priority, not by alert name or
fingerprint, so a search by either reads the newest ``SEARCH_WINDOW`` jobs (narrowed by the
other filters) and matches among them: a bounded read, whatever is tracked."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from api.services import services
from api.ui.blueprint import bp
from api.ui.forms import DEFAULT_PAGE_SIZE
from publishing.priority import Priority
from publishing.tracking import JobQuery, JobSnapshot, JobState

SEARCH_WINDOW = 500
E = TypeVar("E", bound=StrEnum)


def _choice(enum: type[E], name: str) -> E | None:
    value = request.args.get(name, "")
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        abort(400, f"{name} must be one of {', '.join(m.value for m in enum)}")


def _matches(job: JobSnapshot, text: str) -> bool:
    return text in job.alert_name.lower() or job.fingerprint.lower().startswith(text)


@bp.get("/jobs")
def jobs() -> ResponseReturnValue:
    text = request.args.get("q", "").strip()
    tracker = services().tracker
    if text and tracker.get(text) is not None:
        return redirect(url_for("console.job", job_id=text))
    query = JobQuery(
        state=_choice(JobState, "state"),
        priority=_choice(Priority, "priority"),
        target=request.args.get("target", "").strip() or None,
        limit=SEARCH_WINDOW if text else DEFAULT_PAGE_SIZE,
    )
    found, total = tracker.list(query)
    if text:
        found = [j for j in found if _matches(j, text.lower())][:DEFAULT_PAGE_SIZE]
    return render_template(
        "jobs.html",
        jobs=found,
        total=total,
        text=text,
        args=request.args,
        window=SEARCH_WINDOW,
        shown=DEFAULT_PAGE_SIZE,
        states=list(JobState),
        priorities=list(Priority),
        target_names=[t.name for t in services().registry.all()],
    )


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> ResponseReturnValue:
    snapshot = services().tracker.get(job_id)
    if snapshot is None:
        abort(404, f"no tracked job {job_id!r} (jobs are tracked for a day, the newest 10,000)")
    steps = [("submitted", snapshot.submitted_at), ("started", snapshot.started_at)]
    if snapshot.completed_at is not None:
        steps.append((snapshot.state.value, snapshot.completed_at))
    return render_template("job.html", job=snapshot, steps=steps)
