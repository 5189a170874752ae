"""``bench/results/summary.png``: every scenario at a glance, drawn from the JSON results
(a scenario not run yet leaves its panel saying so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, NullFormatter

OURS = "#1f77b4"
REFERENCE = "#7f7f7f"
WHAT_IF = "#9ecae1"
BAD = "#d62728"
GOOD = "#2ca02c"


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return None if "error" in data else data


def _missing(ax: Axes, title: str, name: str) -> None:
    ax.set_title(title)
    ax.text(
        0.5, 0.5, f"not run yet:\npython -m bench {name}", ha="center", va="center", transform=ax.transAxes
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _cpu(data: dict[str, Any]) -> str:
    """The CPU a result was measured on, briefly ("Intel Xeon", "AMD EPYC")."""
    model = str(data.get("machine", {}).get("cpu_model", "?"))
    for word in ("(R)", "(TM)", "Processor", "CPU"):
        model = model.replace(word, " ")
    return " ".join(model.split("@")[0].split()[:3]) or "?"


def _noise(data: dict[str, Any]) -> str:
    noise = data.get("noise", {})
    quick = " quick," if data.get("quick") else ""
    return (
        f"({data.get('date', '?')[:16]}, {_cpu(data)},{quick} "
        f"other load {noise.get('other_load_cores_mean', '?')} cores)"
    )


def _ratios(
    ax: Axes,
    ceiling: dict[str, Any] | None,
    ingest: dict[str, Any] | None,
    storm: dict[str, Any] | None = None,
) -> None:
    title = "Throughput against a reference in the same run"
    if ceiling is None and ingest is None and storm is None:
        _missing(ax, title, "ceiling ingest storm")
        return
    rows: list[tuple[str, float, float | None, str]] = []
    if ceiling:
        shipped = ceiling.get("shipped_pool")
        if shipped:
            rows.append(
                (
                    f"pipeline / bare Celery, {shipped['pool']} -c {shipped['concurrency']}\n"
                    f"{shipped['product_rate_per_s']:.0f} vs {shipped['reference_rate_per_s']:.0f} jobs/s",
                    shipped["ratio"],
                    0.8,
                    OURS,
                )
            )
        rows.append(
            (
                f"pipeline / bare Celery, prefork -c {ceiling.get('setup', {}).get('worker_concurrency', 4)}\n"
                f"{ceiling['product_rate_per_s']:.0f} vs {ceiling['reference_rate_per_s']:.0f} jobs/s",
                ceiling["ratio"],
                0.8,
                OURS,
            )
        )
        what_if = ceiling.get("what_if", {}).get("product_without_task_events")
        if what_if:
            rows.append(
                ("what if: pipeline without\ntask events / bare Celery", what_if["ratio"], None, WHAT_IF)
            )
    if storm:
        rows.append(
            (
                f"storm, gevent -c 100, 200 ms target\n{storm['product_rate_per_s']:.0f} vs "
                f"{storm['reference_rate_per_s']:.0f} jobs/s (prefork -c 8: {storm['prefork_rate_per_s']:.0f})",
                storm["ratio"],
                0.8,
                OURS,
            )
        )
    if ingest:
        rows.append(
            (
                f"API ingest / apply_async loop\n{ingest['ours_alerts_per_s']:.0f} vs "
                f"{ingest['plain_apply_async_per_s']:.0f} alerts/s",
                ingest["ratio"],
                2.5,
                OURS,
            )
        )
    labels = [r[0] for r in rows]
    y = list(range(len(rows)))[::-1]
    # A ratio far past the others (bare Celery's gevent pool draining a storm in bursts) is
    # cut at the axis's edge, its value written there.
    edge = max(2.0, min(max(r[1] for r in rows) * 1.25, 4.0))
    ax.barh(y, [min(r[1], edge) for r in rows], color=[r[3] for r in rows], height=0.6)
    for yi, (_, value, target, _) in zip(y, rows, strict=True):
        if value > edge:
            ax.text(edge, yi, f"{value:.2f} \u2192 ", va="center", ha="right", fontsize=9, color="white")
        else:
            ax.text(value, yi, f" {value:.2f}", va="center", fontsize=9)
        if target is not None:
            ax.plot([target, target], [yi - 0.4, yi + 0.4], color=GOOD if value >= target else BAD, lw=2)
            ax.text(target, yi + 0.42, f"goal {target}", ha="center", fontsize=7, color="#444")
    ax.axvline(1.0, color=REFERENCE, ls=":", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("ratio (1.0 = the reference)")
    ax.set_xlim(0, edge)
    ax.set_title(title)


def _ms_axis(ax: Axes) -> None:
    """A log axis in milliseconds with plain labels (1, 10, 100, 1000), none on minor ticks."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ms (log scale)")


def _cdf(ax: Axes, cdf: list[list[float]], label: str, color: str, ls: str = "-") -> None:
    ax.plot([v for _, v in cdf], [100 * q for q, _ in cdf], label=label, color=color, ls=ls)


def _load_test(ax: Axes, load: dict[str, Any] | None) -> None:
    title = "Load test: POST -> delivered"
    if load is None or "cdf_ms" not in load.get("latency", {}):
        _missing(ax, title, "load")
        return
    lat = load["latency"]
    _cdf(ax, lat["cdf_ms"], f"ours, POST -> sink: {load['delivered']}/{load['accepted']} delivered", OURS)
    reference = load.get("reference", {}).get("latency", {})
    if "cdf_ms" in reference:
        _cdf(
            ax,
            reference["cdf_ms"],
            f"bare Celery, apply_async -> sink: p99 {reference['p99_ms']:.1f} ms",
            REFERENCE,
            "--",
        )
    grouped = load.get("grouped", {}).get("latency", {})
    if "cdf_ms" in grouped:
        _cdf(ax, grouped["cdf_ms"], f"ours, 10 alerts a request: p99 {grouped['p99_ms']:.1f} ms", OURS, ":")
    grouped_reference = load.get("grouped", {}).get("reference", {}).get("latency", {})
    if "cdf_ms" in grouped_reference:
        _cdf(
            ax,
            grouped_reference["cdf_ms"],
            f"bare Celery, 10 at a time: p99 {grouped_reference['p99_ms']:.1f} ms",
            REFERENCE,
            ":",
        )
    for goal_ms, name in ((5, "p50 goal"), (12, "p99 goal")):
        ax.axvline(goal_ms, color=GOOD, ls="--", lw=1)
        ax.text(goal_ms, 3, f" {name}", rotation=90, fontsize=7, color=GOOD, va="bottom")
    _ms_axis(ax)
    ax.set_ylabel("% of jobs")
    ax.set_ylim(0, 101)
    per_request = load["setup"].get("alerts_per_request", 10)
    shape = "one a request" if per_request == 1 else f"{per_request} a request"
    ax.set_title(f"{title}\n{load['setup']['alerts']} alerts at 100/s, {shape} {_noise(load)}", fontsize=10)
    text = (
        f"p50 {lat['p50_ms']:.1f} ms\np95 {lat['p95_ms']:.1f} ms\np99 {lat['p99_ms']:.1f} ms\n"
        f"DLQ rows {load['dlq_rows']}"
    )
    ax.text(0.97, 0.05, text, ha="right", va="bottom", transform=ax.transAxes, fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#ccc"})  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)


def _priority(ax: Axes, priority: dict[str, Any] | None) -> None:
    title = "Priority isolation: high alerts behind a slow low backlog"
    if priority is None:
        _missing(ax, title, "priority")
        return
    ours, naive = priority["ours"]["latency"], priority["naive_celery_defaults"]["latency"]
    if "cdf_ms" in ours:
        _cdf(ax, ours["cdf_ms"], f"ours (high pool + general): p99 {ours['p99_ms']:.0f} ms", OURS)
    if "cdf_ms" in naive:
        _cdf(ax, naive["cdf_ms"], f"Celery defaults: p99 {naive['p99_ms'] / 1000:.1f} s", BAD, "--")
    ax.axvline(15, color=GOOD, ls="--", lw=1)
    ax.text(15, 3, " p99 goal 15 ms", rotation=90, fontsize=7, color=GOOD, va="bottom")
    ax.axvline(100, color="#999", ls=":", lw=1)
    ax.text(100, 3, " SPEC 100 ms", rotation=90, fontsize=7, color="#666", va="bottom")
    _ms_axis(ax)
    ax.set_ylabel("% of high jobs")
    ax.set_ylim(0, 101)
    ax.set_title(f"{title}\n{_noise(priority)}", fontsize=10)
    ax.legend(loc="center right", fontsize=8)


def _recovery(ax: Axes, recovery: dict[str, Any] | None) -> None:
    title = "Recovery: target down, 50 alerts/s throughout"
    if recovery is None:
        _missing(ax, title, "recovery")
        return
    tl = recovery["timeline"]
    xs = [int(s) for s, _ in tl["deliveries_per_s"]]
    ax.bar(xs, [n for _, n in tl["deliveries_per_s"]], width=1.0, color=OURS, label="deliveries / s")
    ax.axvspan(tl["down_s"], tl["up_s"], color=BAD, alpha=0.12, label="target down")
    samples = tl["samples"]
    opened = [s[0] for s in samples if s[1] in ("open", "half_open")]
    if opened:
        ax.plot(opened, [0] * len(opened), "|", color=BAD, ms=8, label="breaker open / half-open")
    twin = ax.twinx()
    twin.plot([s[0] for s in samples], [s[2] for s in samples], color="#ff7f0e", lw=1, label="jobs queued")
    twin.set_ylabel("jobs waiting in the Redis queues", color="#ff7f0e", fontsize=8)
    ax.set_xlabel("s since the start of traffic")
    ax.set_ylabel("deliveries / s")
    closed, drained = recovery["breaker_closed_after_return_s"], recovery["backlog_drained_after_return_s"]
    ax.set_title(
        f"{title}\nafter its return: breaker closed +{closed} s, backlog drained +{drained} s; "
        f"DLQ {recovery['dlq_rows']}\n{_noise(recovery)}",
        fontsize=10,
    )
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="upper left", fontsize=7)


def _memory(ax: Axes, load: dict[str, Any] | None) -> None:
    title = "Load test: resident memory of each process tree"
    if load is None or not load.get("rss"):
        _missing(ax, title, "load")
        return
    for name, tree in load["rss"].items():
        series = tree["series"]
        flat = "flat" if tree["flat"] else f"grew {tree['growth_pct']} %"
        ax.plot([t for t, _ in series], [v for _, v in series], label=f"{name} ({flat})")
    ax.set_xlabel("s since the load started")
    ax.set_ylabel("MiB (VmRSS, summed over the tree)")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")


def _one_process_split(counted: dict[str, Any]) -> tuple[float, float]:
    """A one-process (gevent) worker's round trips a job, as (consumer, task): the task's are
    the pipelines that carry the product's scripts (kombu's records and acknowledgements may
    ride in them) and its named scripts; a pipeline of kombu's writes alone is the consumer's."""
    by_command = counted["parent"]["by_command_per_job"]
    task = sum(
        v
        for k, v in by_command.items()
        if (k.startswith("PIPELINE") and "EVALSHA" in k)
        or (k.startswith("EVALSHA:") and not _is_sha(k.removeprefix("EVALSHA:")))
    )
    return counted["parent"]["redis_round_trips_per_job"] - task, task


def _is_sha(text: str) -> bool:
    return len(text) == 8 and all(c in "0123456789abcdef" for c in text)


def _round_trips(ax: Axes, ceiling: dict[str, Any] | None) -> None:
    title = "Redis round trips per job (counted in the processes)"
    if ceiling is None or "counted" not in ceiling.get("product", {}):
        _missing(ax, title, "ceiling")
        return
    ref, ours = ceiling["reference"]["counted"], ceiling["product"]["counted"]
    api = ceiling["product"]["ingest"].get("counted", {}).get("children", {})
    bars = [
        (
            "bare Celery\nprefork",
            ref["parent"]["redis_round_trips_per_job"],
            ref["children"]["redis_round_trips_per_job"],
        ),
        (
            "our worker\nprefork",
            ours["parent"]["redis_round_trips_per_job"],
            ours["children"]["redis_round_trips_per_job"],
        ),
    ]
    shipped = ceiling.get("shipped_pool")
    if shipped and "counted" in shipped["product"]:
        pool = f"{shipped['pool']} -c {shipped['concurrency']}"
        bars.append((f"bare Celery\n{pool}", *_one_process_split(shipped["reference"]["counted"])))
        bars.append((f"our worker\n{pool}", *_one_process_split(shipped["product"]["counted"])))
    bars.append(("our API\n(per alert)", 0.0, api.get("redis_round_trips_per_job") or 0.0))
    x = range(len(bars))
    ax.bar(x, [b[1] for b in bars], color=REFERENCE, label="consumer (fetch, ack, events)")
    ax.bar(x, [b[2] for b in bars], bottom=[b[1] for b in bars], color=OURS, label="task / request code")
    for xi, (_, a, b) in zip(x, bars, strict=True):
        ax.text(xi, a + b, f"{a + b:.1f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(x), [b[0] for b in bars], fontsize=7)
    ax.set_ylim(0, max(a + b for _, a, b in bars) * 1.15)
    ax.set_ylabel("round trips per job")
    cpu_ref = ceiling["reference"]["cpu_ms_per_job"]["worker"]
    cpu_ours = ceiling["product"]["cpu_ms_per_job"]["worker"]
    ax.set_title(
        f"{title}\nworker CPU per job (prefork): bare {cpu_ref:.2f} ms, ours {cpu_ours:.2f} ms", fontsize=10
    )
    ax.legend(fontsize=7, loc="upper left")


def _panel(ax: Axes, draw_panel: Any, *data: dict[str, Any] | None) -> None:
    """One panel; results of an older harness (a missing field) leave it saying so."""
    try:
        draw_panel(ax, *data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        ax.clear()
        ax.text(0.5, 0.5, f"cannot draw ({type(exc).__name__}: {exc});\nre-run the scenario", ha="center",
                va="center", transform=ax.transAxes, fontsize=8)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])


def draw(results: Path) -> Path:
    ceiling, load = _load(results, "ceiling"), _load(results, "load")
    priority, ingest, recovery = (
        _load(results, "priority"),
        _load(results, "ingest"),
        _load(results, "recovery"),
    )
    fig, axes = plt.subplots(2, 3, figsize=(19, 10.5))
    _panel(axes[0][0], _ratios, ceiling, ingest, _load(results, "storm"))
    _panel(axes[0][1], _load_test, load)
    _panel(axes[0][2], _priority, priority)
    _panel(axes[1][0], _round_trips, ceiling)
    _panel(axes[1][1], _memory, load)
    _panel(axes[1][2], _recovery, recovery)
    found = [d for d in (ceiling, load, priority, ingest, recovery) if d]
    machine: dict[str, Any] = next((d["machine"] for d in found), {})
    cpus = sorted({_cpu(d) for d in found})
    cpu = (
        machine.get("cpu_model", "?") if len(cpus) <= 1 else f"{' / '.join(cpus)} (each panel names its own)"
    )
    fig.suptitle(
        "alert-publishing benchmarks (make bench) - "
        f"{machine.get('nproc', '?')} x {cpu}, Python {machine.get('python', '?')}, "
        f"Celery {machine.get('celery', '?')}, Redis {machine.get('redis_server', '?')}, "
        f"commit {machine.get('commit', '?')}. Ratios compare with a reference measured in the same run.",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    results.mkdir(parents=True, exist_ok=True)
    out = results / "summary.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
