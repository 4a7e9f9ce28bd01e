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

MAX_DEFAULT_WORKERS = 8  # ~600 requests/s each: past this, more only costs memory (~50-80 MB each)
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def default_workers() -> int:
    """The worker count when ``WEB_CONCURRENCY`` is unset: one per usable CPU, at most 8."""
    return min(available_cpus(), MAX_DEFAULT_WORKERS)


def available_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may run on (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota in CPUs of this process's cgroup (v2 ``cpu.max``, e.g. systemd's ``CPUQuota=``,
    else v1 ``cfs_quota_us``), or None if unlimited."""
    for directory in (cgroup_root / _v2_path(proc_cgroup), cgroup_root):
        try:
            quota, _, period = (directory / "cpu.max").read_text().partition(" ")
            return None if quota == "max" else int(quota) / int(period)
        except (OSError, ValueError):
            continue
    try:
        quota_us = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _v2_path(proc_cgroup: Path) -> str:
    """This process's cgroup v2 path (the ``0::/…`` line), relative to the hierarchy's root."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return ""
    return next((line[3:].lstrip("/") for line in lines if line.startswith("0::")), "")
