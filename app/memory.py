"""Memory use against the container's limit (cgroup v2, then v1), for health and shedding; heap trimming."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from pathlib import Path

from app import cgroup

_UNLIMITED = 1 << 60


def cgroup_limit(root: Path = cgroup.ROOT, proc_cgroup: Path = cgroup.PROC_CGROUP) -> int | None:
    """The memory limit of this process's cgroup in bytes (e.g. systemd's ``MemoryMax=``), or None
    when unlimited."""
    limit = (cgroup.as_int(cgroup.v2_value("memory.max", root, proc_cgroup))
             or cgroup.read_int(root / "memory" / "memory.limit_in_bytes"))
    return limit if limit and limit < _UNLIMITED else None


def cgroup_usage(root: Path = cgroup.ROOT, proc_cgroup: Path = cgroup.PROC_CGROUP) -> int | None:
    """Bytes in use by this process's cgroup, when the kernel reports it."""
    return (cgroup.as_int(cgroup.v2_value("memory.current", root, proc_cgroup))
            or cgroup.read_int(root / "memory" / "memory.usage_in_bytes"))


def process_rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_status(threshold: float) -> dict[str, object]:
    """``{"ok", "used_bytes", "limit_bytes", "ratio"}``; ok when under ``threshold`` of the limit."""
    limit = cgroup_limit()
    used = cgroup_usage() if limit else None
    if used is None:
        used = process_rss()
    if not limit:
        return {"ok": True, "used_bytes": used, "limit_bytes": None, "ratio": None}
    ratio = used / limit
    return {"ok": ratio < threshold, "used_bytes": used, "limit_bytes": limit, "ratio": round(ratio, 4)}


def trim_heap() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; elsewhere nothing).

    After a burst of large bodies glibc keeps the freed heap resident; a worker calls this
    once it has gone quiet, so one burst does not hold hundreds of MB for good.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc().malloc_trim(0)


@functools.cache
def libc() -> ctypes.CDLL:
    """glibc, loaded once (raises ``OSError`` where there is none)."""
    return ctypes.CDLL("libc.so.6")
