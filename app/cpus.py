"""How many CPUs this process may use: its affinity mask, capped by a cgroup CPU quota.

One gthread worker keeps about one core busy (its threads share a GIL), so this is the default
worker count (up to :data:`MAX_DEFAULT_WORKERS`): more workers than usable cores only add memory,
fewer leave cores idle. Docker's ``--cpus`` sets a quota without changing the affinity mask, hence
the cgroup read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from app import cgroup

MAX_DEFAULT_WORKERS = 8  # ~600 requests/s each: past this, more only costs memory (~50-80 MB each)


def default_workers() -> int:
    """The worker count when ``WEB_CONCURRENCY`` is unset: one per usable CPU, at most 8."""
    return min(available_cpus(), MAX_DEFAULT_WORKERS)


def available_cpus(cgroup_root: Path = cgroup.ROOT, proc_cgroup: Path = cgroup.PROC_CGROUP) -> int:
    """CPUs this process may run on (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: Path = cgroup.ROOT, proc_cgroup: Path = cgroup.PROC_CGROUP) -> float | None:
    """The CPU quota in CPUs of this process's cgroup (v2 ``cpu.max``, e.g. systemd's ``CPUQuota=``,
    else v1 ``cfs_quota_us``), or None if unlimited."""
    text = cgroup.v2_value("cpu.max", cgroup_root, proc_cgroup)
    if text is not None:
        quota, _, period = text.partition(" ")
        quota_us, period_us = cgroup.as_int(quota), cgroup.as_int(period)  # "max": unlimited
        return quota_us / period_us if quota_us and period_us else None
    quota_us = cgroup.read_int(cgroup_root / "cpu" / "cpu.cfs_quota_us")  # -1 (unlimited) reads as None
    period_us = cgroup.read_int(cgroup_root / "cpu" / "cpu.cfs_period_us")
    return quota_us / period_us if quota_us and period_us else None
