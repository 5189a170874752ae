"""Group commit for the pipelines of a process that runs many jobs at once (a worker on gevent
or threads): a pipeline asked for while another is on the wire waits for it, then goes with
every other one that waited, in one round trip (docs/design.md (Job states)).

No pipeline waits for company: when none is on the wire it goes at once, so a quiet worker
pays nothing, and a busy one sends one round trip for the many jobs that reached the same
step together. Each caller gets its own replies and errors, as if it had run alone: another
job's failed command is not its failure; a connection lost fails the round trip of everyone
in it, as it would have failed each of theirs.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

# A caller waits at most this long for a round trip carried by another; past it the round
# trip is taken as lost (a Redis timeout), as the socket timeout would take its own.
WAIT_LIMIT_S = 30.0


class _Request:
    __slots__ = ("build", "done", "error", "lead", "replies", "scripts")

    def __init__(self, build: Callable[[Pipeline], None], scripts: Iterable[Script]) -> None:
        self.build = build
        self.scripts = list(scripts)
        self.done = threading.Event()
        self.lead = False  # handed the next round trip to send
        self.replies: list[Any] | None = None
        self.error: BaseException | None = None

    def outcome(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        assert self.replies is not None
        return self.replies


class PipelineBatcher:
    """One process's pipelines on one client, sent a round trip at a time: the caller that
    finds none on the wire sends its own and every one queued meanwhile; when it is back, the
    first caller queued behind it sends the next."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._queued: list[_Request] = []
        self._sending = False

    def run(self, build: Callable[[Pipeline], None], scripts: Iterable[Script]) -> list[Any]:
        request = _Request(build, scripts)
        with self._lock:
            self._queued.append(request)
            lead = not self._sending
            self._sending = True
        if not lead:
            self._wait(request)
            if not request.lead:
                return request.outcome()
        self._send()
        return request.outcome()

    def _wait(self, request: _Request) -> None:
        try:
            if not request.done.wait(WAIT_LIMIT_S):
                with self._lock:
                    if request.lead:
                        return  # handed the next round trip as the wait ran out
                    if request in self._queued:
                        self._queued.remove(request)
                        request.error = redis.TimeoutError("no Redis round trip carried this write in time")
                        return
                # Taken into a round trip (or handed the lead) as the wait ran out.
                request.done.wait()
        except BaseException:
            # Interrupted while waiting (a time limit): never leave the queue without a sender.
            with self._lock:
                if request in self._queued:
                    self._queued.remove(request)
                if request.lead:
                    self._hand_on()
            raise

    def _send(self) -> None:
        """Send everything queued in one round trip, then hand the next to whoever queued
        meanwhile."""
        with self._lock:
            batch, self._queued = self._queued, []
        try:
            _execute(self._client, batch)
        except Exception as exc:
            # Loading lost scripts failed (Redis away again), or a bug: whoever is still
            # waiting for a reply learns it; those already answered keep their answers.
            for r in batch:
                if r.replies is None and r.error is None:
                    r.error = _copy(exc)
        except BaseException as exc:
            # The sender itself interrupted mid-round-trip: those it carried learn it as a
            # lost connection (their writes may or may not have landed).
            for r in batch:
                if r.replies is None and r.error is None:
                    r.error = redis.ConnectionError(
                        f"the round trip carrying this write was interrupted ({exc!r})"
                    )
            raise
        finally:
            for r in batch:
                r.done.set()
            with self._lock:
                self._hand_on()

    def _hand_on(self) -> None:
        """Under the lock: the first queued caller sends next, or nobody is sending."""
        if self._queued:
            first = self._queued[0]
            first.lead = True
            first.done.set()
        else:
            self._sending = False


def _execute(client: redis.Redis, batch: list[_Request], reload: bool = True) -> None:
    pipe = client.pipeline(transaction=False)
    spans: list[tuple[_Request, int, int]] = []
    for r in batch:
        begin = len(pipe.command_stack)
        try:
            r.build(pipe)
        except Exception as exc:  # a caller's own bug building its commands: its error only
            del pipe.command_stack[begin:]
            r.error = exc
            continue
        spans.append((r, begin, len(pipe.command_stack)))
    if not spans:
        return
    try:
        replies = pipe.execute(raise_on_error=False)
    except Exception as exc:
        for r, _, _ in spans:
            r.error = _copy(exc)
        return
    unloaded: list[_Request] = []
    for r, begin, end in spans:
        mine = replies[begin:end]
        if reload and any(isinstance(reply, NoScriptError) for reply in mine):
            unloaded.append(r)
            continue
        failed = next((reply for reply in mine if isinstance(reply, Exception)), None)
        if failed is not None:
            r.error = failed
        else:
            r.replies = mine
    if unloaded:
        # Redis lost its scripts (a restart): load them and send those pipelines once more.
        for script in {s.sha: s for r in unloaded for s in r.scripts}.values():
            client.script_load(script.script)
        _execute(client, unloaded, reload=False)


def _copy(exc: Exception) -> Exception:
    """One exception a caller: each raises its own (a traceback is written into it)."""
    try:
        return copy.copy(exc)
    except Exception:
        return exc


class BatchingRedis(redis.Redis):
    """A client whose pipelines (``run_pipeline``) share round trips, for a process that
    runs many jobs at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batcher = PipelineBatcher(self)
