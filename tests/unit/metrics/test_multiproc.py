"""The multiprocess metrics directory: prepared empty, exported, removed only by its owner; dead workers' gauges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.metrics.multiproc import ENV, MetricsDir, prepare


def test_a_configured_directory_is_created_emptied_of_db_files_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "metrics"
    target.mkdir()
    (target / "counter_123.db").write_bytes(b"old")
    (target / "notes.txt").write_text("keep")
    environ: dict[str, str] = {}
    metrics_dir = prepare(str(target), environ)
    assert metrics_dir == MetricsDir(target.resolve(), owned=False, pid=os.getpid())
    assert environ == {ENV: str(target.resolve())}
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    metrics_dir.cleanup()
    assert target.is_dir()


def test_a_missing_configured_directory_is_created(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    prepare(str(tmp_path / "a" / "b"), environ)
    assert (tmp_path / "a" / "b").is_dir()


def test_without_a_setting_a_temporary_directory_is_made_and_removed_by_its_owner_only() -> None:
    environ: dict[str, str] = {}
    metrics_dir = prepare("", environ)
    assert metrics_dir.owned is True
    assert metrics_dir.path.is_dir()
    assert metrics_dir.path.name.startswith("lynkr-metrics-")
    assert environ[ENV] == str(metrics_dir.path)
    MetricsDir(metrics_dir.path, owned=True, pid=os.getpid() + 1).cleanup()  # a forked worker's unwinding
    assert metrics_dir.path.is_dir()
    metrics_dir.cleanup()
    assert not metrics_dir.path.exists()


def test_mark_worker_dead_drops_only_the_live_gauges_of_that_worker(tmp_path: Path) -> None:
    script = (
        "import json, os, sys\n"
        "from prometheus_client import Counter, Gauge\n"
        "Gauge('g', 'g', multiprocess_mode='livesum').set(1)\n"
        "Counter('c', 'c').inc()\n"
        "from app.metrics.multiproc import mark_worker_dead\n"
        "before = sorted(os.listdir(sys.argv[1]))\n"
        "mark_worker_dead(os.getpid())\n"
        "print(json.dumps([os.getpid(), before, sorted(os.listdir(sys.argv[1]))]))\n"
    )
    env = {**os.environ, ENV: str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    pid, before, after = json.loads(out.stdout)
    assert before == [f"counter_{pid}.db", f"gauge_livesum_{pid}.db"]
    assert after == [f"counter_{pid}.db"]
