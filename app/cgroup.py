"""Reading this process's cgroup (v2, else v1) files: CPU quota and memory limit and use.

Under systemd (``CPUQuota=``, ``MemoryMax=``) the limits sit on the service's own cgroup, named
in ``/proc/self/cgroup``; in a container with its own cgroup namespace that is the root.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


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
