"""Submission de-duplication claims on Redis (``publishing.tracking.Deduplicator``)."""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from publishing.adapters.redis.client import NOW_MS, eval_script, run_pipeline, text
from publishing.tracking import Claim, ClaimStatus

# KEYS: the claim. ARGV: job_id, window_ms, grace_ms. A claim is "P|job|since_ms" while its
# job is pending and "E|job" once enqueued. Returns {status, job id}.
_CLAIM = (
    NOW_MS
    + """
local held = redis.call('GET', KEYS[1])
if not held then
  redis.call('SET', KEYS[1], 'P|' .. ARGV[1] .. '|' .. now, 'PX', ARGV[2])
  return {'new', ARGV[1]}
end
local kind, job, since = string.match(held, '^([PE])|([^|]+)|?(%d*)$')
if kind == 'P' and now - tonumber(since) >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], 'P|' .. job .. '|' .. now, 'KEEPTTL')
  return {'taken_over', job}
end
if kind == 'P' then return {'pending', job} end
return {'duplicate', job or held}
"""
)

# KEYS: the claim. ARGV: job_id. Marks a pending claim of that job enqueued.
_MARK = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 3) == 'P|' .. ARGV[1] .. '|' then
  redis.call('SET', KEYS[1], 'E|' .. ARGV[1], 'KEEPTTL')
end
return 1
"""

# KEYS: the claim. ARGV: job_id. Drops a pending claim of that job.
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 3) == 'P|' .. ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisDeduplicator:
    def __init__(self, client: redis.Redis, prefix: str = "publishing") -> None:
        self._client = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._mark = client.register_script(_MARK)
        self._release = client.register_script(_RELEASE)

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
