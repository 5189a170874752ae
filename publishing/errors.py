"""One tree of errors. A docstring is the default message; data travels as attributes."""

from __future__ import annotations

from typing import Any


class PublishingError(Exception):
    """A publishing error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(PublishingError):
    """The configuration is invalid."""


class InvalidAlertError(PublishingError):
    """An alert in the request is invalid.

    ``field`` is a dotted path such as ``alerts[2].labels.alertname``; ``problems`` lists
    every problem found, each ``{"field": ..., "message": ...}``.
    """

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}")


class UnknownTargetError(PublishingError):
    """No target has that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown target {name!r}")


class PublishError(PublishingError):
    """An attempt to deliver a job failed.

    ``status_code`` is the target's HTTP status when it answered at all.
    """

    def __init__(self, message: str | None = None, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class RetryablePublishError(PublishError):
    """The attempt failed in a way that may succeed later."""


class TransientPublishError(RetryablePublishError):
    """The target or the network failed transiently."""


class UnknownPublishError(RetryablePublishError):
    """The attempt failed for a reason we cannot classify; it is retried like a transient one."""


class RateLimitedError(TransientPublishError):
    """The target asked us to slow down.

    ``retry_after_s`` is how long it asked us to wait, when it said.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status_code=status_code)


class PermanentPublishError(PublishError):
    """The target rejected the job; retrying cannot help."""


class DatabaseUnavailableError(PublishingError):
    """The dead-letter database cannot be reached."""


class AlreadyReplayedError(PublishingError):
    """That dead letter has already been replayed."""

    def __init__(self, dead_letter_id: str, details: dict[str, Any] | None = None) -> None:
        self.dead_letter_id = dead_letter_id
        self.details = details or {}
        super().__init__(f"dead letter {dead_letter_id} has already been replayed")


class NotFoundError(PublishingError):
    """No such record."""
