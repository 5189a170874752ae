"""Submission de-duplication claims on Redis (``publishing.tracking.Deduplicator``)."""

from __future__ import annotations

from typing import Any

from redis.client import Pipeline
from redis.commands.core import Script

from publishing.adapters.redis.client import RedisStore, StoreScript, eval_script, run_pipeline, text
from publishing.tracking import Claim, ClaimStatus


class RedisDeduplicator(RedisStore):
    _claim = StoreScript("dedup_claim")
    _mark = StoreScript("dedup_mark")
    _release = StoreScript("dedup_release")

    def _key(self, key: str) -> str:
        return f"{self._prefix}:dedup:{key}"

    def claim_many(self, claims: list[tuple[str, str]], window_s: float, grace_s: float) -> list[Claim]:
        def build(pipe: Pipeline) -> None:
            for key, job_id in claims:
                args: list[Any] = [job_id, max(1, int(window_s * 1000)), int(grace_s * 1000)]
                eval_script(self._claim, [self._key(key)], args, pipe)

        replies = run_pipeline(self._client, build, [self._claim])
        return [Claim(ClaimStatus(text(status)), text(job)) for status, job in replies]

    def mark_enqueued(self, claims: list[tuple[str, str]]) -> None:
        self._run(self._mark, claims)

    def release_many(self, claims: list[tuple[str, str]]) -> None:
        self._run(self._release, claims)

    def _run(self, script: Script, claims: list[tuple[str, str]]) -> None:
        def build(pipe: Pipeline) -> None:
            for key, job_id in claims:
                eval_script(script, [self._key(key)], [job_id], pipe)

        run_pipeline(self._client, build, [script])
