"""Choosing a sandbox, the argv each runtime gets, and what bubblewrap really confines."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from app.config import Config
from app.tools import sandbox
from app.tools.process import ProcessResult, run_process
from app.tools.sandbox import Bubblewrap, Docker, detect_sandbox, hidden_paths, unavailable_reason

BWRAP = "/usr/bin/bwrap"
# /run on this host; /var/run too where it is a directory rather than the usual link to /run
RUNTIME_TMPFS = ["--tmpfs", "/run", *(["--tmpfs", "/var/run"] if not Path("/var/run").is_symlink() else [])]


def which_only(*installed: str) -> Callable[[str], str | None]:
    """A stand-in for shutil.which that finds only ``installed``."""
    return lambda name: f"/usr/bin/{name}" if name in installed else None


def run_confined(argv: list[str], root: Path, *, protected: tuple[Path, ...] = ()) -> ProcessResult:
    wrapped = Bubblewrap(BWRAP).wrap(argv, root=root, protected=protected)
    return run_process(wrapped, cwd=root, env={"PATH": os.environ["PATH"]}, timeout_s=20, max_output_bytes=100_000)


def test_auto_picks_bubblewrap_when_it_is_installed() -> None:
    assert detect_sandbox(Config(), which_only("bwrap")) == Bubblewrap("/usr/bin/bwrap")
    assert detect_sandbox(Config(sandbox_runtime="bubblewrap"), which_only("bwrap", "docker")) == Bubblewrap(
        "/usr/bin/bwrap")


def test_the_real_host_has_bubblewrap() -> None:
    assert detect_sandbox(Config()) == Bubblewrap(BWRAP)


def test_no_sandbox_when_disabled_or_not_installed() -> None:
    assert detect_sandbox(Config(sandbox_enabled=False), which_only("bwrap")) is None
    assert "MCP_SANDBOX_ENABLED=false" in unavailable_reason(Config(sandbox_enabled=False))
    assert detect_sandbox(Config(), which_only("docker")) is None
    assert "bwrap" in unavailable_reason(Config())


def test_docker_needs_its_client_and_an_image() -> None:
    config = Config(sandbox_runtime="docker", sandbox_image="lynkr/sandbox:1")
    assert detect_sandbox(config, which_only("docker", "bwrap")) == Docker("/usr/bin/docker", "lynkr/sandbox:1")
    assert detect_sandbox(config, which_only("bwrap")) is None
    assert "docker" in unavailable_reason(config)


def test_hidden_paths_cover_directories_files_and_sqlite_side_files(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    (tmp_path / "lynkr.db").write_text("rows")
    (tmp_path / "lynkr.db-wal").write_text("recent rows")
    missing = tmp_path / "missing.db"
    hidden = list(hidden_paths([tmp_path / "private", tmp_path / "lynkr.db", missing]))
    assert hidden == [("dir", tmp_path / "private"), ("file", tmp_path / "lynkr.db"),
                      ("file", tmp_path / "lynkr.db-wal")]


def test_bubblewrap_argv_mounts_in_order(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    (root / "data" / "lynkr.db").write_text("rows")
    bwrap = Bubblewrap(BWRAP, kept_visible=("/usr", "/tmp/lynkr-venv", "/tmp/lynkr-venv"))
    argv = bwrap.wrap(["bash", "-c", "ls"], root=root, cwd=root / "data", protected=[root / "data" / "lynkr.db"])
    assert argv == [
        BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        "--ro-bind", "/tmp/lynkr-venv", "/tmp/lynkr-venv", *RUNTIME_TMPFS,
        "--bind", str(root), str(root), "--ro-bind", "/dev/null", str(root / "data" / "lynkr.db"),
        "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--chdir", str(root / "data"),
        "--", "bash", "-c", "ls",
    ]


def test_bubblewrap_shares_the_network_only_when_allowed(tmp_path: Path) -> None:
    closed = Bubblewrap(BWRAP).wrap(["true"], root=tmp_path)
    open_ = Bubblewrap(BWRAP).wrap(["true"], root=tmp_path, allow_network=True)
    assert "--share-net" not in closed
    assert open_[open_.index("--unshare-all") + 1] == "--share-net"


def test_a_resolv_conf_under_run_is_bound_back_only_with_network(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    (run / "resolve").mkdir(parents=True)
    (run / "resolve" / "stub-resolv.conf").write_text("nameserver 127.0.0.53\n")
    (tmp_path / "resolv.conf").symlink_to(run / "resolve" / "stub-resolv.conf")
    monkeypatch.setattr(sandbox, "RUNTIME_DIRS", (str(run),))
    monkeypatch.setattr(sandbox, "RESOLV_CONF", str(tmp_path / "resolv.conf"))
    stub = str(run / "resolve" / "stub-resolv.conf")
    closed = Bubblewrap(BWRAP, kept_visible=()).wrap(["true"], root=tmp_path / "ws")
    open_ = Bubblewrap(BWRAP, kept_visible=()).wrap(["true"], root=tmp_path / "ws", allow_network=True)
    assert closed[10:14] == ["--tmpfs", str(run), "--bind", str(tmp_path / "ws")]
    assert open_[10:16] == ["--tmpfs", str(run), "--ro-bind", stub, stub, "--bind"]


def test_docker_argv(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "cache").mkdir(parents=True)
    (root / "lynkr.db").write_text("rows")
    (tmp_path / "elsewhere.db").write_text("not mounted at all")
    protected = [root / "lynkr.db", root / "cache", tmp_path / "elsewhere.db"]
    argv = Docker("/usr/bin/docker", "img:1").wrap(["bash", "-c", "make test"], root=root, protected=protected,
                                                   env_names=["HOME", "PATH"], timeout_s=2.5)
    assert argv == [
        "/usr/bin/docker", "run", "--rm", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", f"{os.getuid()}:{os.getgid()}", "--tmpfs", "/tmp",
        "--mount", f"type=bind,source={root},target={root}", "--workdir", str(root), "--network", "none",
        "--mount", f"type=bind,source=/dev/null,target={root / 'lynkr.db'},readonly", "--tmpfs", str(root / "cache"),
        "--env", "HOME", "--env", "PATH", "img:1", "timeout", "-s", "KILL", "3", "bash", "-c", "make test",
    ]
    assert "--network" not in Docker("docker", "img:1").wrap(["true"], root=root, allow_network=True)


def test_docker_mounts_the_repository_s_hooks_and_config_read_only(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    argv = Docker("docker", "img:1").wrap(["git", "commit"], root=root)
    mounts = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--mount"]
    hooks, config = root / ".git" / "hooks", root / ".git" / "config"
    assert mounts == [f"type=bind,source={root},target={root}",
                      f"type=bind,source={hooks},target={hooks},readonly",
                      f"type=bind,source={config},target={config},readonly"]
    assert hooks.is_dir()  # created, so there is something to mount over


def test_bubblewrap_leaves_only_the_workspace_writable(workspace_dir: Path, tmp_path: Path) -> None:
    result = run_confined(["bash", "-c", "echo kept > inside.txt; touch /etc/lynkr-probe; echo $?; ls /tmp | wc -l"],
                          workspace_dir)
    assert result.exit_code == 0
    assert (workspace_dir / "inside.txt").read_text() == "kept\n"
    assert not Path("/etc/lynkr-probe").exists()
    lines = result.output.splitlines()
    assert "Read-only file system" in lines[0]
    # touch failed; /tmp holds only the paths down to the workspace and to this checkout if it is there
    assert lines[1:] == ["1", str(len(tops_in_tmp(workspace_dir, *sandbox.gateway_install())))]


def test_the_gateway_s_own_installation_is_kept_visible() -> None:
    source = Path(sandbox.__file__).resolve().parents[2]
    assert sandbox.gateway_install() == (sys.prefix, sys.base_prefix, str(source))
    assert (source / "app" / "tools" / "sandbox.py").is_file()


def tops_in_tmp(*paths: Path | str) -> set[str]:
    """The entries of /tmp that ``paths`` lie under."""
    resolved = [Path(p).resolve() for p in paths]
    return {p.relative_to("/tmp").parts[0] for p in resolved if p.is_relative_to("/tmp")}


def test_a_python_installation_under_tmp_stays_usable(workspace_dir: Path) -> None:
    """A venv under the system temp directory is bound back over the private /tmp, read-only."""
    prefix = Path(tempfile.mkdtemp(prefix="lynkr-python-", dir="/tmp"))
    try:
        (prefix / "bin").mkdir()
        python = prefix / "bin" / "python3"
        python.symlink_to(os.path.realpath(sys.executable))
        argv = [str(python), "-c", f"print('ran'); open({str(prefix / 'x')!r}, 'w')"]
        kept = run_process(Bubblewrap(BWRAP, kept_visible=(str(prefix),)).wrap(argv, root=workspace_dir),
                           cwd=workspace_dir, env={}, timeout_s=20, max_output_bytes=100_000)
        hidden = run_process(Bubblewrap(BWRAP, kept_visible=()).wrap(argv, root=workspace_dir),
                             cwd=workspace_dir, env={}, timeout_s=20, max_output_bytes=100_000)
    finally:
        shutil.rmtree(prefix)
    assert "ran" in kept.output.splitlines()
    assert "Read-only file system" in kept.output
    assert hidden.exit_code != 0
    assert "ran" not in hidden.output


def test_bubblewrap_hides_protected_paths_and_the_gateways_proc(tmp_path: Path, workspace_dir: Path) -> None:
    database = workspace_dir / "lynkr.db"
    database.write_text("SECRET-ROW")
    result = run_confined(["bash", "-c", f"cat lynkr.db; echo overwritten > lynkr.db; cat /proc/{os.getpid()}/environ"],
                          workspace_dir, protected=(database,))
    assert "SECRET-ROW" not in result.output
    assert database.read_text() == "SECRET-ROW"
    assert "No such file or directory" in result.output  # the gateway's pid is not in the new PID namespace


def test_bubblewrap_hides_the_daemons_sockets_in_run(workspace_dir: Path) -> None:
    result = run_confined(["bash", "-c", "ls -A /run /var/run/; echo listed"], workspace_dir)
    assert result.output == "/run:\n\n/var/run/:\nlisted\n"


def test_bubblewrap_commands_have_no_capabilities_to_undo_the_layout(workspace_dir: Path) -> None:
    database = workspace_dir / "lynkr.db"
    database.write_text("SECRET-ROW")
    script = ("grep CapEff /proc/self/status; umount lynkr.db; echo umount=$?; cat lynkr.db; "
              "unshare --user --map-root-user --mount umount lynkr.db; echo unshare=$?")
    result = run_confined(["bash", "-c", script], workspace_dir, protected=(database,))
    assert "CapEff:\t0000000000000000" in result.output
    assert "umount=32" in result.output
    assert "unshare=1" in result.output
    assert "SECRET-ROW" not in result.output


@pytest.mark.parametrize("allowed", [False, True])
def test_bubblewrap_network_namespace(workspace_dir: Path, allowed: bool) -> None:
    wrapped = Bubblewrap(BWRAP).wrap(["cat", "/proc/net/dev"], root=workspace_dir, allow_network=allowed)
    result = run_process(wrapped, cwd=workspace_dir, env={}, timeout_s=20, max_output_bytes=100_000)
    interfaces = {line.split(":")[0].strip() for line in result.output.splitlines()[2:]}
    assert (interfaces == {"lo"}) is not allowed
