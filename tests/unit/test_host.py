"""The default worker count (CPUs in the affinity mask, capped by the cgroup's CPU quota) and the
cgroup memory limit the health check and load shedding read."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from app.host import available_cpus, cgroup_cpu_quota, default_workers, exempt_loaded_objects


@pytest.fixture(autouse=True)
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})


def _proc(tmp_path: Path, text: str = "0::/\n") -> Path:
    path = tmp_path / "proc-cgroup"
    path.write_text(text)
    return path


def test_no_cgroup_files_means_the_affinity_mask(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "none", _proc(tmp_path)) is None
    assert available_cpus(tmp_path / "none", _proc(tmp_path)) == 4


def test_a_v2_quota_rounds_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path, _proc(tmp_path)) == 1.5
    assert available_cpus(tmp_path, _proc(tmp_path)) == 2


def test_an_unlimited_v2_cgroup_keeps_the_affinity_mask(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path, _proc(tmp_path)) == 4


def test_the_quota_of_this_process_s_own_cgroup_counts(tmp_path: Path) -> None:
    service = tmp_path / "system.slice" / "lynkr.service"
    service.mkdir(parents=True)
    (service / "cpu.max").write_text("100000 100000\n")  # systemd CPUQuota=100%
    proc = _proc(tmp_path, "0::/system.slice/lynkr.service\n")
    assert available_cpus(tmp_path, proc) == 1


def test_a_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path, _proc(tmp_path, "1:cpu:/\n")) == 3
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path, _proc(tmp_path, "1:cpu:/\n")) == 4


def test_never_fewer_than_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cpu.max").write_text("10000 100000\n")
    assert available_cpus(tmp_path, _proc(tmp_path)) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert available_cpus(tmp_path / "none", _proc(tmp_path)) == 1


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (3, 3), (8, 8), (64, 8)])
def test_the_default_worker_count_is_one_per_cpu_up_to_eight(monkeypatch: pytest.MonkeyPatch, cpus: int,
                                                             workers: int) -> None:
    monkeypatch.setattr("app.host.available_cpus", lambda: cpus)
    assert default_workers() == workers


def test_the_memory_limit_and_use_of_this_process_s_own_cgroup(tmp_path: Path) -> None:
    from app.host import cgroup_limit, cgroup_usage

    service = tmp_path / "system.slice" / "lynkr.service"
    service.mkdir(parents=True)
    proc = _proc(tmp_path, "0::/system.slice/lynkr.service\n")
    assert cgroup_limit(tmp_path, proc) is None
    (service / "memory.max").write_text("max\n")
    assert cgroup_limit(tmp_path, proc) is None
    (service / "memory.max").write_text("536870912\n")  # systemd MemoryMax=512M
    (service / "memory.current").write_text("104857600\n")
    assert (cgroup_limit(tmp_path, proc), cgroup_usage(tmp_path, proc)) == (536870912, 104857600)
    (tmp_path / "memory").mkdir()  # cgroup v1
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    assert cgroup_limit(tmp_path, _proc(tmp_path, "4:memory:/\n")) is None


def test_small_thread_stacks_apply_to_threads_started_afterwards() -> None:
    import threading

    from app.host import THREAD_STACK_BYTES, use_small_thread_stacks

    previous = threading.stack_size()
    try:
        use_small_thread_stacks()
        assert threading.stack_size() == THREAD_STACK_BYTES == 1 << 20
    finally:
        threading.stack_size(previous)


def test_loaded_objects_are_exempt_from_collection() -> None:
    loaded = [[n] for n in range(10)]  # containers, which the collector tracks
    try:
        exempt_loaded_objects()
        collected = {id(o) for o in gc.get_objects()}  # every generation but the frozen one
        assert not collected & {id(o) for o in loaded}
        assert gc.get_freeze_count() >= len(loaded)
        created_after = [0]
        assert any(o is created_after for o in gc.get_objects())
    finally:
        gc.unfreeze()
