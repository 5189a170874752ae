"""Storm grouping (docs/design.md (Storm grouping)): N alerts (1,000; quick 300) of one group
in one storm to a Slack target limited to one message a second (``rate_limit: {per_s: 1}``,
``group_by: [service]``, ``group_wait_s: 2``), sent through ``POST /webhook`` (100 alerts a
request, 2 clients) while a worker (``-c 4``) runs. The receiver is a loopback Slack stand-in
that keeps every message; an alert's information is at the sink once its fingerprint is in a
message. Reported: seconds from the first request until every alert is at the sink, the
messages it took, and every job's tracking (succeeded, with the job whose message carried
it). One message an alert would take N seconds at this rate; the goal is 30 s for 1,000.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.alerts import AlertSource, payload
from bench.context import Options, environment, machine_facts
from bench.processes import BenchTimeout, wait_until
from bench.product import Product
from bench.services import dlq_database, dlq_rows
from bench.stats import goal
from bench.traffic import concurrent, job_priorities
from publishing.alert import parse_alertmanager

NAME = "grouping"
GOAL_S = 30.0
RATE_PER_S = 1.0
WAIT_S = 2.0
ALERTS_PER_REQUEST = 100


class SlackStandIn:
    """A loopback receiver that answers 200 and keeps each message with its arrival time."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str]] = []
        lock = threading.Lock()
        messages = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with lock:
                    messages.append((time.time(), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/services/T0/B0/X"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _arrivals(sink: SlackStandIn, fingerprints: set[str]) -> dict[str, float]:
    """When each alert first reached the sink (its fingerprint in a message)."""
    seen: dict[str, float] = {}
    for at, body in list(sink.messages):
        for fingerprint in fingerprints - seen.keys():
            if fingerprint in body:
                seen[fingerprint] = at
    return seen


def run(options: Options) -> dict[str, Any]:
    count = 300 if options.quick else 1000
    started = datetime.now(UTC)
    source = AlertSource()
    batches = [source.alerts(ALERTS_PER_REQUEST, "warning") for _ in range(count // ALERTS_PER_REQUEST)]
    bodies = [json.dumps(payload(b)).encode() for b in batches]
    fingerprints = {a.alert.fingerprint for b in batches for a in parse_alertmanager(payload(b))}
    sink = SlackStandIn()
    target = {
        "name": "chat",
        "type": "slack",
        "url": sink.url,
        "rate_limit": {"per_s": RATE_PER_S},
        "group_by": ["service"],
        "group_wait_s": WAIT_S,
    }
    try:
        with environment(NAME, options) as env, dlq_database(env.run_dir) as database_url:
            facts = machine_facts(env.redis.version())
            product = Product(env.supervisor, env.run_dir, env.redis, database_url, [target])
            product.start_api(2)
            product.start_worker("general", "high,medium,low", options.concurrency)
            begun = time.time()
            sent, submit_s = concurrent(f"{product.api_url}/webhook", bodies, clients=2)
            jobs = list(job_priorities(sent))
            if len(jobs) != count:
                raise RuntimeError(f"the API accepted {len(jobs)} of {count} alerts")
            wait_until(
                lambda: len(_arrivals(sink, fingerprints)) == count or None,
                180,
                "every alert at the sink",
                0.2,
            )
            arrivals = _arrivals(sink, fingerprints)
            drained_s = max(arrivals.values()) - begun
            with contextlib.suppress(BenchTimeout):
                # Tracking is a view: the figure is what it shows once settled, or after a minute.
                wait_until(
                    lambda: (
                        all(r[0] == "succeeded" for r in product.tracking(jobs, "state").values()) or None
                    ),
                    60,
                    "every job settled",
                    0.2,
                )
            rows = product.tracking(jobs, "state", "carried_by")
            dead = dlq_rows(database_url)
    finally:
        sink.close()
    states: dict[str, int] = {}
    for state, _ in rows.values():
        states[str(state)] = states.get(str(state), 0) + 1
    carriers = {carrier for _, carrier in rows.values()}
    return {
        "started": started,
        "machine": facts,
        "setup": {
            "alerts": count,
            "alerts_per_request": ALERTS_PER_REQUEST,
            "rate_limit_per_s": RATE_PER_S,
            "group_wait_s": WAIT_S,
            "worker_concurrency": options.concurrency,
            "sink": "loopback Slack stand-in",
        },
        "submit_s": round(submit_s, 2),
        "drain_s": round(drained_s, 2),
        "messages": len(sink.messages),
        "message_at_s": [round(at - begun, 2) for at, _ in sorted(sink.messages)],
        "alerts_per_message": [
            sum(1 for f in fingerprints if f in body) for _, body in sorted(sink.messages)
        ],
        "one_message_an_alert_s": round(count / RATE_PER_S, 1),
        "tracking_states": states,
        "jobs_without_carrier": sum(1 for _, carrier in rows.values() if not carrier),
        "carriers": len(carriers - {None}),
        "dlq_rows": dead,
        "goals": {"storm_drain_s": goal(round(drained_s, 2), GOAL_S, higher_is_better=False)},
        "headline": (
            f"{count} alerts in one storm at 1 message/s: every alert at the sink in {drained_s:.1f} s "
            f"in {len(sink.messages)} message{'' if len(sink.messages) == 1 else 's'} "
            f"(one an alert: {count / RATE_PER_S:.0f} s; goal <= {GOAL_S:.0f} s)"
        ),
    }
