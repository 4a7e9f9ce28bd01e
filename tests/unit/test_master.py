"""The master's drain-safe stop, and lynkr serve keeping the master hooks with a conf of one's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import master
from app.master import DrainingStop
from app.resilience.drain import DrainFlag
from app.serve import LynkrApplication


class FakeArbiter:
    """The two things DrainingStop touches on a gunicorn Arbiter."""

    def __init__(self) -> None:
        self.murdered = 0

    def murder_workers(self) -> None:
        self.murdered += 1

    def handle_term(self) -> None:
        raise AssertionError("stock SIGTERM handling: closes the socket at once")

    def handle_int(self) -> None:
        raise AssertionError("stock SIGINT handling: quick shutdown")


def test_the_first_signal_drains_and_the_loop_stops_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(master.time, "monotonic", lambda: now[0])
    arbiter, drain = FakeArbiter(), DrainFlag()
    DrainingStop(drain, prestop_delay_s=5).install(arbiter)  # type: ignore[arg-type]

    arbiter.handle_term()
    assert drain.draining
    now[0] = 104.9
    arbiter.murder_workers()  # still accepting
    now[0] = 105.0
    with pytest.raises(StopIteration):
        arbiter.murder_workers()
    assert arbiter.murdered == 2  # gunicorn's own worker timeouts still run


def test_a_second_signal_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(master.time, "monotonic", lambda: 0.0)
    arbiter = FakeArbiter()
    DrainingStop(DrainFlag(), prestop_delay_s=30).install(arbiter)  # type: ignore[arg-type]
    arbiter.handle_int()
    arbiter.handle_term()
    with pytest.raises(StopIteration):
        arbiter.murder_workers()


def test_serve_keeps_the_master_hooks_when_a_conf_leaves_them_out(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("workers = 1\n")
    cfg = LynkrApplication(conf).cfg
    assert cfg.on_starting is master.on_starting
    assert cfg.on_exit is master.on_exit
    assert cfg.workers == 1


def test_the_project_conf_installs_the_master_hooks() -> None:
    cfg = LynkrApplication(Path(__file__).resolve().parents[2] / "gunicorn.conf.py").cfg
    assert cfg.on_starting is master.on_starting
    assert cfg.on_exit is master.on_exit
