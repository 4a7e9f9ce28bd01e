"""What this process may use of its host: CPUs (affinity and cgroup quota) and memory (cgroup limit).

Under systemd (``CPUQuota=``, ``MemoryMax=``) the limits sit on the service's own cgroup, named in
``/proc/self/cgroup``; in a container with its own cgroup namespace that is the root. cgroup v2 is
read first, then v1.

One gthread worker keeps about one core busy (its threads share a GIL), so the usable CPU count is
the default worker count (up to :data:`MAX_DEFAULT_WORKERS`): more workers than usable cores only
add memory, fewer leave cores idle. Docker's ``--cpus`` sets a quota without changing the affinity
mask, hence the cgroup read. Memory use against the limit drives health and shedding; freed heap is
handed back with ``malloc_trim``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import math
import os
import threading
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
MAX_DEFAULT_WORKERS = 8  # ~600 requests/s each: past this, more only costs memory (~50-80 MB each)
_UNLIMITED = 1 << 60
# Each thread of a worker mostly waits on a socket; 1 MiB of stack (instead of the 8 MiB default)
# keeps a thousand of them cheap in address space while leaving room for C-level recursion (orjson,
# regular expressions) on deeply nested bodies.
THREAD_STACK_BYTES = 1 << 20

# -- cgroup files --

def v2_dirs(root: Path = ROOT, proc_cgroup: Path = PROC_CGROUP) -> list[Path]:
    """Where this process's cgroup v2 files may be: its own cgroup, then the hierarchy's root."""
    own = root / _v2_path(proc_cgroup)
    return [own] if own == root else [own, root]


def v2_value(name: str, root: Path = ROOT, proc_cgroup: Path = PROC_CGROUP) -> str | None:
    """The first readable cgroup v2 file ``name`` of this process (stripped), or None."""
    for directory in v2_dirs(root, proc_cgroup):
        text = read(directory / name)
        if text is not None:
            return text
    return None


def read(path: Path) -> str | None:
    """A cgroup file's text (stripped), or None when it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_int(path: Path) -> int | None:
    """A cgroup file holding a count, or None (unreadable, or ``max``)."""
    return as_int(read(path))


def as_int(text: str | None) -> int | None:
    """A count from a cgroup file's text; None for ``max`` or anything that is not one."""
    return int(text) if text is not None and text.isdigit() else None


def _v2_path(proc_cgroup: Path) -> str:
    """This process's cgroup v2 path (the ``0::/…`` line), relative to the hierarchy's root."""
    lines = (read(proc_cgroup) or "").splitlines()
    return next((line[3:].lstrip("/") for line in lines if line.startswith("0::")), "")


# -- CPUs --

def default_workers() -> int:
    """The worker count when ``WEB_CONCURRENCY`` is unset: one per usable CPU, at most 8."""
    return min(available_cpus(), MAX_DEFAULT_WORKERS)


def available_cpus(cgroup_root: Path = ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may run on (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: Path = ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota in CPUs of this process's cgroup (v2 ``cpu.max``, e.g. systemd's ``CPUQuota=``,
    else v1 ``cfs_quota_us``), or None if unlimited."""
    text = v2_value("cpu.max", cgroup_root, proc_cgroup)
    if text is not None:
        quota, _, period = text.partition(" ")
        quota_us, period_us = as_int(quota), as_int(period)  # "max": unlimited
        return quota_us / period_us if quota_us and period_us else None
    quota_us = read_int(cgroup_root / "cpu" / "cpu.cfs_quota_us")  # -1 (unlimited) reads as None
    period_us = read_int(cgroup_root / "cpu" / "cpu.cfs_period_us")
    return quota_us / period_us if quota_us and period_us else None


def use_small_thread_stacks() -> None:
    """Give threads started from now on :data:`THREAD_STACK_BYTES` of stack (a worker's request
    threads and stream readers)."""
    threading.stack_size(THREAD_STACK_BYTES)


def exempt_loaded_objects() -> None:
    """Take what the app has loaded out of garbage collection: it lives as long as the worker, and
    each full collection walking it again is a pause every open stream waits through."""
    gc.collect()
    gc.freeze()


# -- memory --

def cgroup_limit(root: Path = ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The memory limit of this process's cgroup in bytes (e.g. systemd's ``MemoryMax=``), or None
    when unlimited."""
    limit = (as_int(v2_value("memory.max", root, proc_cgroup))
             or read_int(root / "memory" / "memory.limit_in_bytes"))
    return limit if limit and limit < _UNLIMITED else None


def cgroup_usage(root: Path = ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """Bytes in use by this process's cgroup, when the kernel reports it."""
    return (as_int(v2_value("memory.current", root, proc_cgroup))
            or read_int(root / "memory" / "memory.usage_in_bytes"))


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
