"""Pipelines that jobs of one I/O-pool process run at the same moment share Redis round trips
(``publishing.adapters.redis.batching``), and each job still gets exactly its own replies and
errors: another job's failed command is not its failure, a lost round trip is everyone's, and
a sender interrupted mid-round-trip leaves nobody waiting."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.client import Pipeline

from publishing.adapters.redis.batching import BatchingRedis
from publishing.adapters.redis.client import load_script, run_pipeline
from tests.support.private_services import PrivateRedis

pytestmark = pytest.mark.redis

THREADS = 16


class Wire:
    """Counts the requests written to Redis (one pipeline, one write) while it is on."""

    def __init__(self) -> None:
        self.writes = 0
        self._lock = threading.Lock()
        self._original = redis.connection.Connection.send_packed_command

    def __enter__(self) -> Wire:
        wire, original = self, self._original

        def counting(conn, command, check_health=True):  # type: ignore[no-untyped-def]
            with wire._lock:
                wire.writes += 1
            return original(conn, command, check_health)

        redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        redis.connection.Connection.send_packed_command = self._original  # type: ignore[method-assign]


@pytest.fixture
def client(fresh_redis: str) -> Iterator[BatchingRedis]:
    pool = redis.BlockingConnectionPool.from_url(fresh_redis, max_connections=THREADS + 2)
    c = BatchingRedis(connection_pool=pool)
    c.ping()
    yield c
    c.close()


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` on ``count`` threads released at once; each one's result or exception."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def slow_then(pipe: Pipeline, *commands: tuple[Any, ...]) -> None:
    """A pipeline whose first command holds Redis 20 ms, so that others queue behind it."""
    pipe.execute_command(
        "EVAL",
        "local t = redis.call('TIME') while true do local n = redis.call('TIME') "
        "if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 20000 then break end end return 1",
        0,
    )
    for command in commands:
        pipe.execute_command(*command)


def test_concurrent_pipelines_share_round_trips_and_each_gets_its_own_replies(client: BatchingRedis) -> None:
    def work(i: int) -> list[Any]:
        def build(pipe: Pipeline) -> None:
            slow_then(pipe, ("INCRBY", f"n{i}", i + 1), ("GET", f"n{i}"))

        return run_pipeline(client, build, [])

    with Wire() as wire:
        results = together(THREADS, work)
    assert results == [[1, i + 1, str(i + 1).encode()] for i in range(THREADS)]
    # Each thread alone would have written once; queued behind one another they share writes.
    assert wire.writes < THREADS


def test_a_command_that_fails_fails_only_the_pipeline_it_belongs_to(client: BatchingRedis) -> None:
    client.set("text", "not a list")

    def work(i: int) -> list[Any]:
        def build(pipe: Pipeline) -> None:
            slow_then(pipe, ("LPUSH", "text", "x") if i % 2 else ("INCR", f"ok{i}"))

        return run_pipeline(client, build, [])

    results = together(8, work)
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, redis.ResponseError) and "WRONGTYPE" in str(result)
        else:
            assert result == [1, 1]
    assert all(client.get(f"ok{i}") == b"1" for i in range(0, 8, 2))


def test_a_pipeline_that_cannot_be_built_fails_alone(client: BatchingRedis) -> None:
    def work(i: int) -> list[Any]:
        def build(pipe: Pipeline) -> None:
            slow_then(pipe, ("INCR", f"b{i}"))
            if i == 3:
                raise ValueError("unknown tracking field 'colour'")

        return run_pipeline(client, build, [])

    results = together(6, work)
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [[1, 1]] * 5
    assert client.get("b3") is None  # none of its commands went out


class Interrupted(BaseException):
    """What a time limit raises inside a job."""


def test_a_sender_interrupted_mid_round_trip_fails_those_it_carried_and_the_next_ones_still_go(
    client: BatchingRedis,
) -> None:
    holding = threading.Event()
    release = threading.Event()

    def leader(pipe: Pipeline) -> None:
        holding.set()
        release.wait(5)  # the others queue up meanwhile
        raise Interrupted()

    def work(i: int) -> Any:
        if i == 0:
            return run_pipeline(client, leader, [])
        holding.wait(5)
        return run_pipeline(client, lambda pipe: pipe.incr(f"w{i}"), [])

    timer = threading.Timer(0.3, release.set)
    timer.start()
    results = together(5, work)
    assert isinstance(results[0], Interrupted)
    # Queued behind the interrupted sender: each either went in a later round trip or learnt
    # that the one carrying it was lost; nobody is left waiting.
    for r in results[1:]:
        assert r == [1] or isinstance(r, redis.ConnectionError), r
    assert run_pipeline(client, lambda pipe: pipe.incr("after"), []) == [1]


def test_scripts_lost_by_a_redis_restart_are_loaded_and_every_pipeline_still_runs_once() -> None:
    server = PrivateRedis(appendonly=False)
    server.start()
    try:
        c = BatchingRedis.from_url(server.url)
        script = load_script(c, "reconcile_unlock")  # any shipped script; its key is absent
        c.script_load(script.script)
        c.execute_command("SCRIPT", "FLUSH")  # what a restart does to the script cache

        def work(i: int) -> list[Any]:
            def build(pipe: Pipeline) -> None:
                slow_then(pipe, ("INCR", f"s{i}"))
                pipe.evalsha(script.sha, 1, f"lock{i}", "token")

            return run_pipeline(c, build, [script])

        results = together(6, work)
        # Each got its script's reply (0: no lock to release), not Redis's NOSCRIPT.
        assert all(isinstance(r, list) and r[-1] == 0 for r in results), results
        assert c.script_exists(script.sha) == [True]
    finally:
        server.destroy()
