# Over 300 lines: each command is a short function next to the one parser that wires them.
"""publishing: the operator's command line over the REST API (--url, default
$PUBLISHING_API_URL or http://127.0.0.1:8080; the token from $PUBLISHING_API_TOKEN, or
else the file make run keeps it in, var/api-token under the current directory).
Lists print as a compact table, or JSON with -o json (before or after the command); an error
exits non-zero with the API's message."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import requests
import yaml

from api.schemas_targets import TEST_SEVERITIES
from publishing.classification import ErrorType
from publishing.errors import ConfigError
from publishing.priority import Priority
from publishing.replay import RunState
from publishing.target_config import document_problems
from publishing.targets import Target, check_target_set
from publishing.tracking import JobState

DEFAULT_URL = "http://127.0.0.1:8080"
# Where ``make run`` keeps the admin token it generates (deploy/local/run.py).
LOCAL_TOKEN_FILE = Path("var") / "api-token"
API = "/api/v2/publishing"
EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3
POLL_S = 0.5
FINISHED_RUN_STATES = (RunState.DONE.value, RunState.FAILED.value)


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """An enum's values, as ``choices=``."""
    return tuple(member.value for member in enum)


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_API_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Client:
    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.session.request(
                method,
                self.url + path,
                params=query,
                json=body,
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise CliError(
                f"cannot reach the API at {self.url}: {type(exc).__name__}", EXIT_UNREACHABLE
            ) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            if isinstance(data, dict) and "message" in data:
                raise CliError(f"{data['message']} ({data.get('error')}, HTTP {response.status_code})")
            raise CliError(f"HTTP {response.status_code} from {path}")
        return data


def api_token() -> str | None:
    token = os.environ.get("PUBLISHING_API_TOKEN")
    if token:
        return token
    try:
        return LOCAL_TOKEN_FILE.read_text().strip() or None
    except OSError:
        return None


# --- output ---


def _cell(value: Any, width: int = 48) -> str:
    text = "-" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# The narrowest a wrapped last column gets, however little room the terminal leaves it.
MIN_WRAP_WIDTH = 30


def print_table(
    rows: list[dict[str, Any]], columns: Sequence[str], out: TextIO, *, wrap_last: bool = False
) -> None:
    """A table, each cell cut to 48 characters; with ``wrap_last`` the last column is shown
    whole instead, wrapped to the terminal's width under its heading."""
    if not rows:
        print("(none)", file=out)
        return
    last = len(columns) - 1
    cells = [
        [_cell(row.get(c), 10**6 if wrap_last and i == last else 48) for i, c in enumerate(columns)]
        for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    indent = sum(widths[:last]) + 2 * last
    if wrap_last:
        widths[last] = max(MIN_WRAP_WIDTH, shutil.get_terminal_size().columns - indent)
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        lines = textwrap.wrap(row[last], widths[last], break_on_hyphens=False) if wrap_last else []
        if wrap_last:
            row = [*row[:last], lines[0] if lines else ""]
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
        for more in lines[1:]:
            print(" " * indent + more, file=out)


def print_json(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, sort_keys=False), file=out)


def print_fields(data: dict[str, Any], out: TextIO) -> None:
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else _cell(value, 200)
        print(f"{key.ljust(width)}  {shown}", file=out)


def progress_bar(run: dict[str, Any], err: TextIO, width: int = 30) -> None:
    total = run.get("total") or 0
    handled = run.get("done", 0) + run.get("failed", 0) + run.get("skipped", 0)
    filled = width if not total else min(width, width * handled // total)
    bar = "#" * filled + "-" * (width - filled)
    line = (
        f"\r[{bar}] {handled}/{total}  replayed {run.get('done', 0)}  failed {run.get('failed', 0)}"
        f"  skipped {run.get('skipped', 0)}  {run.get('state')}"
    )
    err.write(line)
    err.flush()


# --- commands ---


def _dlq_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "target": args.target,
        "error_type": args.error_type,
        "priority": args.priority,
        "failed_after": args.failed_after,
        "failed_before": args.failed_before,
    }


def cmd_test_alert(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    body = {"severity": args.severity} if args.severity else None
    result = client.call("POST", f"{API}/targets/{args.target_name}/test", body=body)
    _show(args, result, out)
    return 0


def cmd_dlq_list(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    params = {**_dlq_filters(args), "replayed": args.replayed, "limit": args.limit, "offset": args.offset}
    page = client.call("GET", f"{API}/dlq", params=params)
    if args.output == "json":
        print_json(page, out)
    else:
        columns = (
            "id",
            "failed_at",
            "target_name",
            "priority",
            "error_type",
            "replayed",
            "replay_result",
            "error_message",
        )
        # The message last and whole: its status and the target's reason come at its end.
        print_table(page["entries"], columns, out, wrap_last=True)
        print(f"{len(page['entries'])} of {page['total']} (offset {page['offset']})", file=out)
    return 0


def cmd_dlq_show(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _show(args, client.call("GET", f"{API}/dlq/{args.id}"), out)
    return 0


def cmd_dlq_stats(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _show(args, client.call("GET", f"{API}/dlq/stats"), out)
    return 0


def cmd_dlq_replay(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _show(args, client.call("POST", f"{API}/dlq/{args.id}/replay"), out)
    return 0


def cmd_dlq_replay_all(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    body = {k: v for k, v in _dlq_filters(args).items() if v is not None}
    body["dry_run"] = args.dry_run
    run = client.call("POST", f"{API}/dlq/replay", body=body)
    if args.dry_run:
        if args.output == "json":
            print_json(run, out)
        else:
            for letter_id in run.get("ids", []):
                print(letter_id, file=out)
            more = " (list truncated)" if run.get("ids_truncated") else ""
            print(f"{run['total']} rows would be replayed{more}; nothing was enqueued", file=err)
        return 0
    if not args.no_wait:
        progress_bar(run, err)
        while run["state"] not in FINISHED_RUN_STATES:
            time.sleep(POLL_S)
            run = client.call("GET", f"{API}/dlq/replay/{run['run_id']}")
            progress_bar(run, err)
        err.write("\n")
    _show(args, run, out)
    return 1 if run["state"] == RunState.FAILED.value else 0


def cmd_dlq_purge(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    params = {
        "older_than": args.older_than,
        "replayed_only": "true" if args.replayed_only else "false",
        "force": "true" if args.force else None,
        "dry_run": "true" if args.dry_run else None,
    }
    _show(args, client.call("DELETE", f"{API}/dlq/purge", params=params), out)
    return 0


def cmd_queue_status(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = client.call("GET", f"{API}/queue/status")
    if args.output == "json":
        print_json(status, out)
    else:
        rows = [{"queue": q, "depth": n} for q, n in status["depth"].items()]
        print_table([*rows, {"queue": "total", "depth": status["total"]}], ("queue", "depth"), out)
    return 0


def cmd_queue_stats(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    stats = client.call("GET", f"{API}/queue/stats")
    if args.output == "json":
        print_json(stats, out)
        return 0
    queues = [{"queue": q, **v} for q, v in stats["queues"].items()]
    total = {"queue": "total", "depth": stats["total"]}
    print_table([*queues, total], ("queue", "depth", "oldest_age_s"), out)
    workers = stats["workers"]
    if workers["count"] is None:
        print("\nworkers: unknown (none could be asked)", file=out)
    else:
        print(f"\nworkers: {workers['count']} {' '.join(workers['names'] or [])}".rstrip(), file=out)
    print("", file=out)
    jobs = stats["jobs"]
    by_state = [{"state": s, "jobs": n} for s, n in jobs["by_state"].items()]
    print_table(by_state, ("state", "jobs"), out)
    print(
        f"submitted {jobs['submitted']}  succeeded {jobs['succeeded']}  failed {jobs['failed']}"
        f"  dlq {jobs['dlq']}",
        file=out,
    )
    print("", file=out)
    breakers = [{"target": t, "breaker": state} for t, state in stats["breakers"].items()]
    print_table(breakers, ("target", "breaker"), out)
    return 0


def cmd_breakers(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "reset_target", None):
        _show(args, client.call("POST", f"{API}/breakers/{args.reset_target}/reset"), out)
        return 0
    breakers = client.call("GET", f"{API}/breakers")["breakers"]
    if args.output == "json":
        print_json(breakers, out)
    else:
        print_table(
            breakers, ("target", "state", "consecutive_failures", "trips", "recoveries", "opened_at"), out
        )
    return 0


def cmd_jobs(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.job_id:
        _show(args, client.call("GET", f"{API}/jobs/{args.job_id}"), out)
        return 0
    params = {"state": args.state, "priority": args.priority, "target": args.target, "limit": args.limit}
    page = client.call("GET", f"{API}/jobs", params=params)
    if args.output == "json":
        print_json(page, out)
    else:
        columns = ("id", "state", "priority", "target", "alert_name", "retry_count", "last_error")
        print_table(page["jobs"], columns, out)
        print(f"{len(page['jobs'])} of {page['total']}", file=out)
    return 0


def cmd_targets_list(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    targets = client.call("GET", f"{API}/targets")["targets"]
    if args.output == "json":
        print_json(targets, out)
        return 0
    rows = []
    for target in targets:
        rate = target["health"]["success_rate"]
        rows.append(
            {
                "name": target["name"],
                "type": target["type"],
                "enabled": target["enabled"],
                "breaker": target["breaker"]["state"],
                "success_rate": None if rate is None else f"{rate:.0%}",
            }
        )
    print_table(rows, ("name", "type", "enabled", "breaker", "success_rate"), out)
    return 0


def cmd_targets_validate(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Offline: every problem of every file, one line each; the set is checked as the workers load it."""
    problems: list[str] = []
    found: list[Target] = []
    for path in args.files:
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read ({type(exc).__name__})")
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(f"{path}: not valid YAML or JSON{f' at line {mark.line + 1}' if mark else ''}")
            continue
        targets, file_problems = document_problems(document, str(path))
        problems += file_problems
        found += targets
    if not problems:
        try:
            check_target_set(found)
        except ConfigError as exc:
            problems.append(str(exc))
    for problem in problems:
        print(problem, file=out)
    if not problems:
        print(f"{len(found)} targets in {len(args.files)} files: valid", file=out)
    return EXIT_API_ERROR if problems else 0


def _show(args: argparse.Namespace, data: Any, out: TextIO) -> None:
    if args.output == "table" and isinstance(data, dict):
        print_fields(data, out)
    else:
        print_json(data, out)


# --- parser ---

Command = Callable[[Client, argparse.Namespace, TextIO, TextIO], int]


def _add_dlq_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target")
    parser.add_argument("--error-type", choices=values(ErrorType))
    parser.add_argument("--priority", choices=values(Priority))
    parser.add_argument("--failed-after", metavar="RFC3339")
    parser.add_argument("--failed-before", metavar="RFC3339")


OUTPUTS = ("table", "json")


def _output_option() -> argparse.ArgumentParser:
    """``-o`` for every command, so it may come after the command too. Its default is left
    unset here, so a command's parser never undoes a ``-o json`` given before it."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "-o", "--output", choices=OUTPUTS, default=argparse.SUPPRESS, help="table (the default) or json"
    )
    return shared


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="publishing", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("PUBLISHING_API_URL", DEFAULT_URL))
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table", help="table or json")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request")
    output = _output_option()

    def group(commands: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, parents=[output], **kwargs)
        return sub

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    test = group(commands, "test-alert", help="send a synthetic test alert to a target")
    test.add_argument("target_name", metavar="TARGET")
    test.add_argument("--severity", choices=TEST_SEVERITIES)
    test.set_defaults(func=cmd_test_alert)

    dlq = group(commands, "dlq", help="the dead-letter queue").add_subparsers(
        dest="dlq_command", required=True, metavar="DLQ_COMMAND"
    )
    listing = group(dlq, "list", help="list dead letters, newest first")
    _add_dlq_filters(listing)
    listing.add_argument("--replayed", choices=("true", "false"))
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(func=cmd_dlq_list)
    show = group(dlq, "show", help="one dead letter")
    show.add_argument("id")
    show.set_defaults(func=cmd_dlq_show)
    group(dlq, "stats", help="DLQ statistics").set_defaults(func=cmd_dlq_stats)
    replay = group(dlq, "replay", help="replay one dead letter")
    replay.add_argument("id")
    replay.set_defaults(func=cmd_dlq_replay)
    replay_all = group(dlq, "replay-all", help="replay every unreplayed row matching the filters")
    _add_dlq_filters(replay_all)
    replay_all.add_argument("--dry-run", action="store_true", help="list the rows; enqueue nothing")
    replay_all.add_argument("--no-wait", action="store_true", help="start the run and return")
    replay_all.set_defaults(func=cmd_dlq_replay_all)
    purge = group(dlq, "purge", help="delete rows older than a duration")
    purge.add_argument("--older-than", required=True, metavar="DURATION", help="such as 168h, 7d, 30m")
    purge.add_argument("--replayed-only", action="store_true")
    purge.add_argument("--force", action="store_true", help="needed for a DURATION under 1h")
    purge.add_argument("--dry-run", action="store_true", help="count the rows that would go; delete none")
    purge.set_defaults(func=cmd_dlq_purge)

    queue = group(commands, "queue", help="queue depth and statistics").add_subparsers(
        dest="queue_command", required=True, metavar="QUEUE_COMMAND"
    )
    group(queue, "status", help="depth by priority").set_defaults(func=cmd_queue_status)
    group(queue, "stats", help="depth, ages, workers, counts, breakers").set_defaults(func=cmd_queue_stats)

    breakers = group(commands, "breakers", help="list breakers, or reset one")
    breakers.set_defaults(func=cmd_breakers)
    reset = group(
        breakers.add_subparsers(dest="breakers_command", metavar="reset TARGET"),
        "reset",
        help="close a target's breaker",
    )
    reset.add_argument("reset_target", metavar="TARGET")

    targets_group = group(commands, "targets", help="targets (list, the default) and targets files")
    targets_group.set_defaults(func=cmd_targets_list)
    targets = targets_group.add_subparsers(dest="targets_command", metavar="TARGETS_COMMAND")
    group(
        targets, "list", help="name, type, enabled, breaker state and success rate of each target"
    ).set_defaults(func=cmd_targets_list)
    validate = group(
        targets, "validate", help="check targets files as the workers load them (offline: no API call)"
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=cmd_targets_validate)

    jobs = group(commands, "jobs", help="tracked jobs, newest first (or one by id)")
    jobs.add_argument("job_id", nargs="?", metavar="JOB_ID")
    jobs.add_argument("--state", choices=values(JobState))
    jobs.add_argument("--priority", choices=values(Priority))
    jobs.add_argument("--target")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.set_defaults(func=cmd_jobs)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    client = Client(args.url, api_token(), args.timeout)
    command: Command = args.func
    try:
        return command(client, args, out, err)
    except CliError as exc:
        print(f"publishing: error: {exc}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\npublishing: interrupted", file=err)
        return 130
