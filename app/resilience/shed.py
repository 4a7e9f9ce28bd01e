"""Load shedding: refuse a new model request (503 overloaded_error + Retry-After) early.

A gthread worker hands at most ``threads`` requests to Flask; the rest wait in gunicorn's
queue where the app cannot see them. So the signals are the work already in flight (requests
and streams per worker), how long the request waited before reaching Flask (stamped at accept
by nginx's ``X-Request-Start`` or by a worker hook — see :func:`queued_ms_from_header`), and
memory: this process's RSS against the container's cgroup limit.

The Node Lynkr's ``LOAD_SHEDDING_HEAP_THRESHOLD`` was a V8 heap fraction; Python has no
separate heap, so it maps onto the same RSS / cgroup-limit ratio as
``LOAD_SHEDDING_MEMORY_THRESHOLD`` and the lower of the two applies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from app.host import cgroup_limit, process_rss

MemoryReader = Callable[[], float | None]


def rss_ratio() -> float | None:
    """This process's RSS as a fraction of the cgroup memory limit; None when unlimited."""
    limit = cgroup_limit()
    return process_rss() / limit if limit else None


def _reached(value: float | None, limit: float | None) -> bool:
    return bool(value is not None and limit and value >= limit)  # a limit of None or 0 is off


class LoadShedder:
    """Decides whether a new request must be shed, and why. Thresholds of None or 0 are off."""

    def __init__(self, max_in_flight_streams: int | None = None, max_queue_ms: float | None = None,
                 memory_threshold: float | None = None, active_requests_threshold: int | None = None,
                 *, cache_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 memory_reader: MemoryReader = rss_ratio) -> None:
        self.max_in_flight_streams = max_in_flight_streams
        self.max_queue_ms = max_queue_ms
        self.memory_threshold = memory_threshold
        self.active_requests_threshold = active_requests_threshold
        self.cache_s = cache_s
        self.clock = clock
        self.memory_reader = memory_reader
        self._memory: tuple[float, float | None] | None = None  # (read at, ratio)

    def check(self, in_flight: int, queued_ms: float | None, in_flight_streams: int = 0) -> str | None:
        """The reason to shed a new request — "memory", "queue_time", "active_requests" or
        "streams" — or None to admit it.

        ``in_flight`` counts this worker's model requests already running (not this one);
        ``in_flight_streams`` its upstream streams still open. Each reason triggers when its
        value reaches its threshold.
        """
        if self.memory_threshold and _reached(self.memory_ratio(), self.memory_threshold):
            return "memory"
        if _reached(queued_ms, self.max_queue_ms):
            return "queue_time"
        if _reached(in_flight, self.active_requests_threshold):
            return "active_requests"
        if _reached(in_flight_streams, self.max_in_flight_streams):
            return "streams"
        return None

    def memory_ratio(self) -> float | None:
        """The memory reader's ratio, read at most once per ``cache_s``."""
        now = self.clock()
        cached = self._memory
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        ratio = self.memory_reader()
        # Two threads may both read when the cache expires; that costs one extra read, no more.
        self._memory = (now, ratio)
        return ratio


_SECONDS_BELOW = 1e11  # epoch seconds until the year 5138
_MILLIS_BELOW = 1e14
_MICROS_BELOW = 1e17


def queued_ms_from_header(value: str, now: float) -> float | None:
    """Milliseconds a request queued, from ``X-Request-Start`` and the epoch time ``now``.

    Reads nginx's ``t=1700000000.123`` (``t=${msec}``) and bare epoch seconds, milliseconds or
    microseconds (told apart by size). None when unreadable; 0 when the stamp is in the future
    (clock skew between hosts).
    """
    text = value.strip()
    text = text[2:] if text.startswith("t=") else text
    try:
        stamp = float(text)
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp <= 0 or stamp >= _MICROS_BELOW:
        return None
    if stamp >= _MILLIS_BELOW:
        stamp /= 1e6
    elif stamp >= _SECONDS_BELOW:
        stamp /= 1e3
    return max(0.0, (now - stamp) * 1000)
