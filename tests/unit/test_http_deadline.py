"""The attempt deadline's watchdog (publishing/adapters/http_deadline.py): one thread a process
cuts the socket of an attempt still waiting at its deadline, never earlier, and never one whose
attempt ended; a forked process (a prefork child) has a watchdog of its own."""

from __future__ import annotations

import os
import socket
import time

from publishing.adapters.http_deadline import CUT_SLACK_S, Watch


def cut(sock: socket.socket) -> bool:
    """Whether ``sock`` was shut down: a recv then returns at once, with nothing."""
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_a_socket_is_cut_at_its_deadline_and_not_before_and_an_ended_attempt_never() -> None:
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        start = time.monotonic()
        late, cancelled, later = Watch(start + 0.3), Watch(start + 0.3), Watch(start + 60)
        armed_late = late.arm(pairs[0][0])
        armed_cancelled = cancelled.arm(pairs[1][0])
        later.arm(pairs[2][0])
        assert armed_late is not None and armed_cancelled is not None
        armed_cancelled.cancel()
        while not late.fired and time.monotonic() < start + 10:
            time.sleep(0.01)
        assert late.fired and time.monotonic() - start >= 0.3
        assert cut(pairs[0][0])
        time.sleep(2 * CUT_SLACK_S)
        assert not cancelled.fired and not cut(pairs[1][0])
        assert not later.fired and not cut(pairs[2][0])
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_a_forked_child_cuts_its_own_attempts() -> None:
    # The parent arms first, so the child inherits a watchdog whose thread did not survive the fork.
    a, b = socket.socketpair()
    parent_watch = Watch(time.monotonic() + 60)
    parent_armed = parent_watch.arm(a)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its own deadline cut its socket
        code = 1
        try:
            c, _d = socket.socketpair()  # _d kept open: a closed peer reads as cut too
            watch = Watch(time.monotonic() + 0.2)
            watch.arm(c)
            deadline = time.monotonic() + 10
            while not watch.fired and time.monotonic() < deadline:
                time.sleep(0.01)
            code = 0 if watch.fired and cut(c) else 1
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not parent_watch.fired
    finally:
        assert parent_armed is not None
        parent_armed.cancel()
        a.close()
        b.close()
