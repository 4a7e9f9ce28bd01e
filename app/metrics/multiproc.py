"""The multiprocess metrics directory ``lynkr serve`` prepares, and the gunicorn hook that tidies it.

``prometheus_client`` decides at import whether values go to per-process mmap files: only when
``PROMETHEUS_MULTIPROC_DIR`` is already set. So the gunicorn master sets it before anything
imports the library (this module does not import it at module level) and before the first
fork; workers inherit it. Files of an earlier run would be summed into this one, so the
directory is emptied first. Counter and histogram files of a worker that exits stay (its
counts still happened); :func:`mark_worker_dead` drops its ``live*`` gauge files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class MetricsDir:
    """The directory in use, and whether it is ours to delete when the server stops."""

    path: Path
    owned: bool
    pid: int = field(default_factory=os.getpid)

    def cleanup(self) -> None:
        """Remove the directory if ``lynkr serve`` created it; leave a configured one.

        Only in the process that prepared it: a forked worker unwinds through the same
        ``finally`` when it exits, and must not delete the directory under its siblings.
        """
        if self.owned and os.getpid() == self.pid:
            shutil.rmtree(self.path, ignore_errors=True)


def prepare(configured: str, environ: MutableMapping[str, str]) -> MetricsDir:
    """Create (or empty) the directory and export it in ``environ`` for ``prometheus_client``.

    ``configured`` is ``PROMETHEUS_MULTIPROC_DIR`` from the config: that directory is created
    if missing and its ``*.db`` files removed; empty, a fresh temporary directory is made and
    removed again by :meth:`MetricsDir.cleanup`. Raises ``OSError`` if it cannot be created.
    """
    if configured:
        path = Path(configured).resolve()
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        metrics_dir = MetricsDir(path, owned=False)
    else:
        metrics_dir = MetricsDir(Path(tempfile.mkdtemp(prefix="lynkr-metrics-")), owned=True)
    environ[ENV] = str(metrics_dir.path)
    return metrics_dir


def mark_worker_dead(pid: int) -> None:
    """gunicorn ``child_exit``: forget the exited worker's ``live*`` gauges (no-op off multiprocess)."""
    from prometheus_client import values
    from prometheus_client.multiprocess import mark_process_dead

    if getattr(values.ValueClass, "_multiprocess", False):
        mark_process_dead(pid)
