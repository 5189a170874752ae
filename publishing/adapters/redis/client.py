"""The Redis client every adapter shares, and the way they run Lua scripts: read from the
``lua/`` files beside this module, registered once, called by ``EVALSHA``, reloaded after a
Redis restart. On a worker's I/O pool the pipelines its jobs run at the same moment share
round trips (``publishing.adapters.redis.batching``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, overload
from urllib.parse import urlsplit

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.sentinel import Sentinel

from publishing.adapters.capacity import HEADROOM, job_slots
from publishing.adapters.redis.batching import BatchingRedis, PipelineBatcher
from publishing.settings import Settings

_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "health_check_interval": 25,
    "retry_on_timeout": True,
}


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")


def redis_client(settings: Settings) -> redis.Redis:
    """A client for REDIS_URL; a ``sentinel://`` URL (Celery's form, ``;``-separated) gives a
    client that follows the master Sentinel names, through failovers.

    In a worker its pool holds at most one connection a job slot and a few more
    (``capacity``); a caller past that waits for one (up to the socket timeout) rather than
    opening more: a fleet of I/O pools at ``-c 100`` stays within Redis's ``maxclients``.
    A process that runs several jobs at once (an I/O pool) gets a ``BatchingRedis``."""
    slots = job_slots()
    redis_class = BatchingRedis if slots is not None and slots > 1 else redis.Redis
    if not is_sentinel(settings.redis_url):
        if slots is None:
            return redis.Redis.from_url(settings.redis_url, **_CLIENT_OPTIONS)
        pool = redis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=slots + HEADROOM,
            timeout=_CLIENT_OPTIONS["socket_timeout"],
            **_CLIENT_OPTIONS,
        )
        return redis_class(connection_pool=pool)
    hosts: list[tuple[str, int]] = []
    db, password = 0, None
    for part in settings.redis_url.split(";"):
        parts = urlsplit(part.strip())
        hosts.append((parts.hostname or "localhost", parts.port or 26379))
        if parts.path.strip("/").isdigit():
            db = int(parts.path.strip("/"))
        password = parts.password or password
    sentinel = Sentinel(hosts, socket_timeout=2, socket_connect_timeout=2)
    return sentinel.master_for(
        settings.redis_sentinel_master, redis_class=redis_class, db=db, password=password, **_CLIENT_OPTIONS
    )


@functools.cache
def script_text(name: str) -> str:
    """The text of ``lua/<name>.lua``, read once a process (every client registers the same)."""
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def script_stems() -> list[str]:
    """The names of every script shipped with the adapters."""
    folder = resources.files(__package__) / "lua"
    return sorted(
        entry.name.removesuffix(".lua") for entry in folder.iterdir() if entry.name.endswith(".lua")
    )


def load_script(client: redis.Redis, name: str) -> Script:
    """``lua/<name>.lua`` registered with ``client``: called by ``EVALSHA``, loaded on demand."""
    return client.register_script(script_text(name))


def run_pipeline(
    client: redis.Redis, build: Callable[[Pipeline], None], scripts: Iterable[Script]
) -> list[Any]:
    """Build and run a pipeline whose scripts are called by ``evalsha`` (see ``eval_script``).
    redis-py would otherwise send SCRIPT EXISTS before every pipeline with scripts; after a
    Redis restart (scripts gone) they are loaded and the pipeline is built and run again.
    On a ``BatchingRedis`` it shares a round trip with the pipelines other jobs of the process
    run at the same moment, with the same replies and errors as alone."""
    batcher: PipelineBatcher | None = getattr(client, "batcher", None)
    if batcher is not None:
        return batcher.run(build, scripts)
    return run_alone(client, build, scripts)


@dataclass
class _HeldWrites:
    client: redis.Redis
    builds: list[Callable[[Pipeline], None]] = field(default_factory=list)
    scripts: list[Script] = field(default_factory=list)


_held: ContextVar[_HeldWrites | None] = ContextVar("publishing_held_writes", default=None)


@contextmanager
def writes_together(client: redis.Redis) -> Iterator[None]:
    """The writes made on ``client`` inside the block through ``run_writes`` are held, then
    sent in one round trip as the block ends, in the order they were made; an error of any of
    them raises there. Nothing is sent when the block raises. Calls whose replies are read
    (``run_pipeline``, a script called directly) are never held."""
    held = _HeldWrites(client)
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
    if held.builds:

        def build(pipe: Pipeline) -> None:
            for each in held.builds:
                each(pipe)

        run_pipeline(client, build, held.scripts)


def run_writes(client: redis.Redis, build: Callable[[Pipeline], None], scripts: Iterable[Script]) -> None:
    """``run_pipeline`` for writes whose replies nobody reads: inside ``writes_together`` on
    the same client they wait for the block's end and share its round trip."""
    held = _held.get()
    if held is not None and held.client is client:
        held.builds.append(build)
        held.scripts.extend(scripts)
        return
    run_pipeline(client, build, scripts)


def run_alone(client: redis.Redis, build: Callable[[Pipeline], None], scripts: Iterable[Script]) -> list[Any]:
    """``run_pipeline`` in a round trip of its own."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            return pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            for script in scripts:
                client.script_load(script.script)
    raise AssertionError("unreachable")


def eval_script(script: Script, keys: list[str], args: list[Any], client: Any = None) -> Any:
    """Run a registered script; on a pipeline, queue a bare EVALSHA (``run_pipeline`` loads
    the scripts when Redis has lost them)."""
    if isinstance(client, Pipeline):
        return client.evalsha(script.sha, len(keys), *keys, *args)
    return script(keys=keys, args=args, client=client)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """A store on Redis: its client, and the prefix every key it writes starts with (the
    deployment's ``PUBLISHING_KEY_PREFIX``, or a test's own)."""

    def __init__(self, client: redis.Redis, prefix: str = "publishing") -> None:
        self._client = client
        self._prefix = prefix

    def _target_key(self, kind: str, target: str) -> str:
        """``<prefix>:<kind>:{<target>}``: the hash tag keeps every key of a target in one
        cluster slot, so one script can take them all."""
        return f"{self._prefix}:{kind}:{{{target}}}"


class StoreScript:
    """``lua/<name>.lua`` as an attribute of a ``RedisStore``: registered with the store's
    client the first time the store runs it (registering sends nothing to Redis)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, store: None, owner: type) -> StoreScript: ...
    @overload
    def __get__(self, store: RedisStore, owner: type) -> Script: ...
    def __get__(self, store: RedisStore | None, owner: type) -> StoreScript | Script:
        if store is None:
            return self
        script = load_script(store._client, self._name)
        # Kept on the instance: later reads find it there and never come back here.
        store.__dict__[self._attribute] = script
        return script
