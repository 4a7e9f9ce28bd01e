"""A clock the test moves by hand, for code that takes a ``clock: Callable[[], float]``."""

from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
