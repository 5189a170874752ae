"""The pipeline batcher's failure paths over a stub Redis client (the real-Redis behaviour is
in tests/integration/test_pipeline_batching.py): a round trip that fails after some of its
callers were answered leaves them their answers, and nobody is left waiting."""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import NoScriptError

from publishing.adapters.redis.batching import PipelineBatcher, _Request


class StubPipeline:
    def __init__(self, client: StubClient) -> None:
        self.client = client
        self.command_stack: list[Any] = []

    def queue(self, name: str) -> None:
        self.command_stack.append(name)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return [self.client.reply(name) for name in self.command_stack]


class StubClient:
    """Answers ``ok`` with 1 and ``script`` with NOSCRIPT; loading a script fails (Redis
    gone again)."""

    def pipeline(self, transaction: bool = True) -> StubPipeline:
        return StubPipeline(self)

    @staticmethod
    def reply(name: str) -> Any:
        return NoScriptError("NOSCRIPT No matching script") if name == "script" else 1

    def script_load(self, text: str) -> str:
        raise redis.ConnectionError("Connection refused")


class StubScript:
    sha = "abc"
    script = "return 1"


def test_when_reloading_lost_scripts_fails_the_answered_keep_their_answers_and_the_rest_learn_why() -> None:
    batcher = PipelineBatcher(StubClient())  # type: ignore[arg-type]
    answered = _Request(lambda pipe: pipe.queue("ok"), [])
    unloaded = _Request(lambda pipe: pipe.queue("script"), [StubScript()])  # type: ignore[list-item]
    batcher._queued, batcher._sending = [answered, unloaded], True

    batcher._send()

    assert answered.outcome() == [1]
    assert isinstance(unloaded.error, redis.ConnectionError)
    assert answered.done.is_set() and unloaded.done.is_set()
    assert batcher._sending is False  # the next caller sends at once


def test_a_caller_queued_behind_a_round_trip_is_handed_the_next_one() -> None:
    batcher = PipelineBatcher(StubClient())  # type: ignore[arg-type]
    first = _Request(lambda pipe: pipe.queue("ok"), [])
    batcher._queued, batcher._sending = [first], True
    behind = _Request(lambda pipe: pipe.queue("ok"), [])

    def arrives_meanwhile(pipe: StubPipeline) -> None:
        pipe.queue("ok")
        batcher._queued.append(behind)  # queued while this round trip is out

    first.build = arrives_meanwhile
    batcher._send()
    assert first.outcome() == [1]
    assert behind.lead and behind.done.is_set() and batcher._sending
