"""A publisher that answers as it is told and records every call."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from publishing.alert import EnrichedAlert
from publishing.classification import ERROR_CLASSES, classify_status
from publishing.delivery import Receipt
from publishing.errors import (
    RateLimitedError,
    TransientPublishError,
)
from publishing.targets import Target


@dataclass(frozen=True)
class Answer:
    """What a scripted target answers: an HTTP status, with a Retry-After in seconds and a body
    when given, or (``refused``) no answer at all."""

    status: int = 200
    retry_after_s: float | None = None
    body: str = ""
    refused: bool = False


@dataclass(frozen=True)
class PublishCall:
    target: str
    job_id: str
    fingerprint: str


class RecordingPublisher:
    """``Publisher`` that records every call and answers from a script (the last answer
    repeats), failing as ``HttpPublisher`` does: 2xx is a ``Receipt``; 429, or 503 with a
    Retry-After, is ``RateLimitedError``; any other status the ``PublishError`` its
    classification names; a refused connection ``TransientPublishError``. Messages name the
    target and never hold its secrets."""

    def __init__(self, *answers: Answer | int, duration_s: float = 0.01) -> None:
        self.calls: list[PublishCall] = []
        self._answers = [Answer(a) if isinstance(a, int) else a for a in answers] or [Answer()]
        self._duration_s = duration_s
        self._lock = threading.Lock()

    def script(self, *answers: Answer | int) -> None:
        with self._lock:
            self._answers = [Answer(a) if isinstance(a, int) else a for a in answers] or [Answer()]

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        with self._lock:
            self.calls.append(PublishCall(target.name, job_id, enriched.alert.fingerprint))
            answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if answer.refused:
            raise TransientPublishError(f"request to target {target.name!r} failed: connection refused")
        if 200 <= answer.status < 300:
            return Receipt(answer.status, self._duration_s)
        message = f"HTTP {answer.status} from target {target.name!r}"
        if answer.body:
            excerpt = " ".join(answer.body.split()).replace(target.url, target.public_url)
            message += f": {target.redact(excerpt)[:200]}"
        if answer.status == 429 or (answer.status == 503 and answer.retry_after_s is not None):
            raise RateLimitedError(message, status_code=answer.status, retry_after_s=answer.retry_after_s)
        raise ERROR_CLASSES[classify_status(answer.status)](message, status_code=answer.status)
