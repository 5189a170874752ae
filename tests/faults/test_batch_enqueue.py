"""A request's jobs reach the broker in one pipeline (docs/design.md (Where an alert goes)).
Redis lost in the middle of that pipeline leaves its outcome unknown to the API: Redis got
only part of it (a transaction cut before its EXEC runs none of it; a plain pipeline would
run that part), or all of it ran and only the reply was lost. The request must answer 503 naming Redis,
the client sends it again, and every job a 202 accepted is delivered; a job whose message did
reach the broker may be delivered twice, under its one id, never lost."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest

from publishing.settings import Settings
from tests.faults.rig import Rig, am_alert, am_payload, payloads
from tests.support.alert_api import ApiThread
from tests.support.fault_target import FaultTarget
from tests.support.services import REDIS_HOST, REDIS_PORT
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

BLIP_S = 6.0
COMMAND = b"\r\nLPUSH\r\n"


class MidPipelineProxy(TcpProxy):
    """Cuts the line inside the pipeline that carries the enqueue: Redis gets the commands up
    to the second ``LPUSH`` (``partial``) or all of them, the API none of the
    replies."""

    def __init__(self, upstream_port: int, upstream_host: str, *, partial: bool) -> None:
        super().__init__(upstream_port, upstream_host)
        self._partial = partial
        self._muted = False
        self.forwarded_commands = 0
        self.forwarded_exec = 0

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not from_client:
                    if not self._muted:
                        sink.sendall(data)
                    continue
                if self._marker is not None and self._marker in data:
                    self._muted = True
                    self._forward_then_cut(source, sink, data)
                    self._muted = False
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _forward_then_cut(self, source: socket.socket, sink: socket.socket, data: bytes) -> None:
        """Forward the pipeline (whole, or up to its second LPUSH), let Redis run it, cut."""
        sent = b""
        second = data.find(COMMAND, data.find(COMMAND) + 1)
        if self._partial and second > 0:
            # Back to the start of the second LPUSH's frame: Redis gets only what precedes it.
            data = data[: data.rfind(b"\r\n*", 0, second) + 2]
        sink.sendall(data)
        sent += data
        if not self._partial:
            # A pipeline larger than one write arrives in several: forward the rest of it too.
            source.settimeout(0.3)
            with contextlib.suppress(TimeoutError):
                while more := source.recv(65536):
                    sink.sendall(more)
                    sent += more
        time.sleep(0.2)
        self.forwarded_commands = sent.count(COMMAND)
        self.forwarded_exec = sent.count(b"\r\nEXEC\r\n")
        self._trip(self._marker or b"")


@pytest.mark.parametrize("partial", [True, False], ids=["cut-inside-the-pipeline", "reply-lost"])
def test_redis_lost_inside_the_enqueue_pipeline_loses_no_accepted_job(
    partial: bool, fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("hook")
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target])
    proxy = MidPipelineProxy(REDIS_PORT, REDIS_HOST, partial=partial)
    database = fresh_redis.rsplit("/", 1)[1]
    api = ApiThread(Settings.from_env({**rig.env, "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{database}"}))
    try:
        rig.fleet.start("w1", concurrency=2)
        sender = rig.sender_for(api.url)
        rig.started = time.monotonic()
        for payload in payloads("BeforeCut", 10):
            sender.send(payload)
        proxy.cut_on(b"LPUSH", down_s=BLIP_S)
        # Three priorities, so the pipeline carries more than one LPUSH.
        severities = ("critical", "warning", "info", "critical", "warning")
        cut = am_payload(
            [am_alert(f"DuringCut{i}", severity=s, instance=f"c{i}") for i, s in enumerate(severities)]
        )
        accepted = sender.send(cut)
        for payload in payloads("AfterCut", 10):
            sender.send(payload)

        books = rig.books(timeout_s=90)
        record_books(
            f"2 Redis lost inside the enqueue pipeline ({'cut inside' if partial else 'reply lost'})", books
        )
        print(
            f"LPUSHes Redis got: {proxy.forwarded_commands}, EXECs: {proxy.forwarded_exec}; "
            f"statuses {sender.statuses}; 202: {accepted}"
        )
        assert proxy.cuts == 1 and sender.resends > 0
        assert proxy.forwarded_commands >= 1, "the cut did not land inside the pipeline"
        # The answer to the cut request named Redis (503), never an unexplained 500.
        assert set(sender.statuses) <= {0, 202, 503}, sender.statuses
        assert books.submitted == 25
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
    finally:
        api.close()
        proxy.close()
        rig.close()
        target.stop()
