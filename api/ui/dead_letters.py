"""The DLQ pages: rows filtered and paged, a row's detail (the alert redacted with its
target's secrets), replay one or a selection, bulk replay with a dry run and its progress,
and purge. The same use cases as the JSON API (``Replayer``, the replay runs), behind the
same roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from api.params import parse_duration
from api.schemas_query import MIN_PURGE_AGE_S
from api.services import services
from api.ui.blueprint import BULK_REPLAY_ROLE, PURGE_ROLE, REPLAY_ROLE, bp, needs
from api.ui.format import pretty
from api.ui.forms import PAGE_SIZES, page_of, read_dlq_filter
from publishing.dlq import DeadLetter, DLQFilter
from publishing.errors import AlreadyReplayedError, NotFoundError, UnknownTargetError
from publishing.replay import ReplayEnqueueError, ReplayRefusedError

# A selection replays at most this many rows in one request (a page's worth).
MAX_SELECTED = max(PAGE_SIZES)
PREVIEW_IDS = 20


@bp.get("/dlq")
def dlq() -> ResponseReturnValue:
    form = read_dlq_filter(request.args)
    limit, offset = page_of(request.args)
    rows: list[DeadLetter] = []
    total = 0
    if form.error is None:
        rows, total = services().dead_letters.read(form.query, limit=limit, offset=offset)
    return render_template(
        "dlq.html",
        form=form,
        rows=rows,
        total=total,
        limit=limit,
        offset=offset,
        page_sizes=PAGE_SIZES,
        target_names=[t.name for t in services().registry.all()],
    ), (400 if form.error else 200)


def _redacted_json(letter: DeadLetter) -> tuple[str, str]:
    """The stored alert and target as JSON, with every secret of the row's target (as
    configured now) written ``***``; the stored target is already redacted."""
    alert, target = pretty(letter.enriched_alert), pretty(letter.target_config)
    try:
        configured = services().registry.get(letter.target_name)
    except UnknownTargetError:
        return alert, target
    return configured.redact(alert), configured.redact(target)


@bp.get("/dlq/<uuid:letter_id>")
def dlq_detail(letter_id: uuid.UUID) -> ResponseReturnValue:
    letter = services().dead_letters.get(str(letter_id))
    alert, target = _redacted_json(letter)
    return render_template("dlq_detail.html", row=letter, alert_json=alert, target_json=target)


def _replay(letter_id: str) -> tuple[str, str]:
    """Replay one row: ``(category, message)`` for the page, as the API's statuses would say."""
    try:
        job = services().replayer.replay_one(letter_id)
    except AlreadyReplayedError:
        return "warning", f"{letter_id} was already replayed."
    except ReplayRefusedError as exc:
        return "error", f"{letter_id} cannot be replayed: {exc.reason}."
    except ReplayEnqueueError:
        return "error", f"{letter_id}: the broker is unavailable; the row is replayable again."
    except NotFoundError:
        return "warning", f"{letter_id} no longer exists (purged?)."
    return "success", f"{letter_id} replayed as job {job.job_id}."


@bp.post("/dlq/<uuid:letter_id>/replay")
@needs(REPLAY_ROLE)
def dlq_replay_one(letter_id: uuid.UUID) -> ResponseReturnValue:
    category, message = _replay(str(letter_id))
    flash(message, category)
    return redirect(url_for("console.dlq_detail", letter_id=letter_id))


@bp.post("/dlq/replay-selected")
@needs(REPLAY_ROLE)
def dlq_replay_selected() -> ResponseReturnValue:
    ids = request.form.getlist("ids")
    if not ids:
        flash("Select at least one row to replay.", "warning")
    elif len(ids) > MAX_SELECTED:
        abort(400, f"at most {MAX_SELECTED} rows at a time; use a bulk replay for more")
    replayed = 0
    for letter_id in dict.fromkeys(ids):
        try:
            uuid.UUID(letter_id)
        except ValueError:
            abort(400, f"{letter_id!r} is not a row id")
        category, message = _replay(letter_id)
        replayed += category == "success"
        if category != "success":
            flash(message, category)
    if replayed:
        flash(f"{replayed} of {len(set(ids))} selected rows replayed.", "success")
    return redirect(_back_to_list())


def _back_to_list() -> str:
    back = request.form.get("back", "")
    return back if back.startswith(url_for("console.dlq")) else url_for("console.dlq")


@bp.post("/dlq/replay")
@needs(BULK_REPLAY_ROLE)
def dlq_bulk_replay() -> ResponseReturnValue:
    form = read_dlq_filter(request.form)
    if form.error is not None:
        abort(400, form.error)
    dry_run = request.form.get("dry_run") == "1"
    svc = services()
    run = svc.replayer.new_run(form.query, dry_run=dry_run)
    svc.replay_runs.save(run)
    if dry_run:
        ids = svc.replayer.preview(run, limit=PREVIEW_IDS)
        return render_template("run.html", run=run, preview=ids, form=form)
    svc.replay_runner.start(run)
    return redirect(url_for("console.dlq_run", run_id=run.run_id))


@bp.get("/dlq/runs/<run_id>")
def dlq_run(run_id: str) -> ResponseReturnValue:
    run = services().replay_runs.get(run_id)
    if run is None:
        abort(404, f"no replay run {run_id!r} (runs are kept 7 days)")
    return render_template("run.html", run=run, preview=None, form=None)


@bp.post("/dlq/purge")
@needs(PURGE_ROLE)
def dlq_purge() -> ResponseReturnValue:
    older_than = request.form.get("older_than", "").strip() or "168h"
    try:
        age_s = parse_duration(older_than)
    except ValueError as exc:
        abort(400, str(exc))
    replayed_only = request.form.get("replayed_only") == "1"
    dry_run = request.form.get("dry_run") == "1"
    if age_s < MIN_PURGE_AGE_S and not (dry_run or request.form.get("force") == "1"):
        flash(
            f"{older_than} is under {MIN_PURGE_AGE_S // 3600}h and would delete rows nobody may have "
            "seen yet; tick 'force' to purge them anyway.",
            "error",
        )
        return redirect(url_for("console.dlq"))
    svc = services()
    try:
        cutoff = datetime.fromtimestamp(svc.clock(), UTC) - timedelta(seconds=age_s)
    except OverflowError:
        cutoff = datetime.min.replace(tzinfo=UTC)
    which = "replayed rows" if replayed_only else "rows"
    if dry_run:
        count = _count_older(cutoff, replayed_only)
        flash(f"Dry run: {count} {which} failed before {cutoff:%Y-%m-%d %H:%M} UTC would be purged.", "info")
    else:
        deleted = svc.dead_letters.purge(cutoff, replayed_only=replayed_only)
        flash(f"Purged {deleted} {which} that failed before {cutoff:%Y-%m-%d %H:%M} UTC.", "success")
    return redirect(url_for("console.dlq"))


def _count_older(cutoff: datetime, replayed_only: bool) -> int:
    query = DLQFilter(failed_before=cutoff, replayed=True if replayed_only else None)
    return services().dead_letters.read(query, limit=1)[1]
