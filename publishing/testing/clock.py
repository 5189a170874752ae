"""A clock that moves only when told, for the fakes and the tests that drive them."""

from __future__ import annotations


class FrozenClock:
    """A clock that moves only when told: ``clock()`` is now in seconds."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
