"""The shell tool runs model commands with bash, confined by a real bubblewrap sandbox."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.tools.base import ToolContext, ToolError
from app.tools.paths import Workspace
from app.tools.shell import SHELL_TOOLS, run_in_workspace

SECRET = "dapi-gateway-secret-0123456789"


def shell(ctx: ToolContext, command: str, **args: Any) -> str:
    result = SHELL_TOOLS[0].run(ctx, {"command": command, **args})
    assert isinstance(result, str)
    return result


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory on the host outside /tmp (which the sandbox replaces with its own)."""
    path = Path(tempfile.mkdtemp(prefix="lynkr-shell-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_the_tool_is_offered_in_place_of_bash() -> None:
    (tool,) = SHELL_TOOLS
    assert (tool.name, tool.duplicates) == ("shell", ("Bash",))
    assert tool.input_schema["required"] == ["command"]
    assert set(tool.input_schema["properties"]) == {"command", "timeout_ms", "cwd"}


def test_a_command_runs_in_the_workspace_and_its_writes_persist(ctx: ToolContext, workspace_dir: Path) -> None:
    result = shell(ctx, "pwd; echo written > notes.txt; echo $HOME")
    assert result == f"exit code: 0\n\n{workspace_dir}\n/tmp\n"
    assert (workspace_dir / "notes.txt").read_text() == "written\n"


def test_cmd_is_accepted_for_command_and_the_exit_code_is_reported(ctx: ToolContext) -> None:
    assert SHELL_TOOLS[0].run(ctx, {"cmd": "echo out; echo err >&2; exit 3"}) == "exit code: 3\n\nout\nerr\n"
    assert shell(ctx, "true") == "exit code: 0\n\n(no output)"


@pytest.mark.parametrize("template", [
    "echo hi; touch {target}",
    "echo $(touch {target})",
    "echo `touch {target}`",
    "echo hi\ntouch {target}",
    "echo hi && cd / && touch {target}",
])
def test_injected_writes_outside_the_workspace_leave_nothing(ctx: ToolContext, tmp_path: Path, host_dir: Path,
                                                             workspace_dir: Path, template: str) -> None:
    name = f"lynkr-escape-{uuid.uuid4().hex}"
    targets = [tmp_path / "outside" / name, host_dir / name, Path("/tmp") / name]
    command = "\n".join(["echo ran > inside.txt", *(template.format(target=target) for target in targets)])
    shell(ctx, command)
    assert (workspace_dir / "inside.txt").read_text() == "ran\n"  # the command did run, in the workspace
    assert [target for target in targets if target.exists()] == []
    assert list((tmp_path / "outside").iterdir()) == []


def test_secrets_and_unlisted_variables_are_not_in_the_childs_environment(
        make_ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_API_KEY", SECRET)
    monkeypatch.setenv("LYNKR_TEST_UNLISTED", "unlisted-value")
    monkeypatch.setenv("LYNKR_TEST_LISTED", "listed-value")
    monkeypatch.setenv("LYNKR_TEST_LEAKY", SECRET)  # listed, but its value is a configured secret
    ctx = make_ctx(databricks_api_key=SECRET, sandbox_passthrough_env=(
        "PATH", "LYNKR_TEST_LISTED", "LYNKR_TEST_LEAKY", "DATABRICKS_API_KEY"))
    output = shell(ctx, "env")
    assert SECRET not in output
    assert "LYNKR_TEST_UNLISTED" not in output
    assert "unlisted-value" not in output
    assert "LYNKR_TEST_LISTED=listed-value" in output
    assert "LYNKR_TEST_LEAKY" not in output
    assert "DATABRICKS_API_KEY" not in output


def test_the_gateway_database_cannot_be_read_or_changed(make_ctx: Any, workspace_dir: Path) -> None:
    database = workspace_dir / "data" / "lynkr.db"
    database.parent.mkdir()
    database.write_text("SECRET-ROW")
    database.with_name("lynkr.db-wal").write_text("RECENT-ROW")
    ctx = make_ctx(session_db_path=str(database))
    output = shell(ctx, "cat data/lynkr.db data/lynkr.db-wal; ln -s data/lynkr.db link; cat link; "
                        "echo replaced > data/lynkr.db; cp /dev/null data/lynkr.db-wal; echo ran")
    assert output.endswith("ran\n")
    assert "SECRET-ROW" not in output
    assert "RECENT-ROW" not in output
    assert database.read_text() == "SECRET-ROW"
    assert database.with_name("lynkr.db-wal").read_text() == "RECENT-ROW"


def test_a_protected_file_outside_the_workspace_and_tmp_is_hidden(make_ctx: Any, host_dir: Path) -> None:
    database = host_dir / "lynkr.db"
    database.write_text("SECRET-ROW")
    output = shell(make_ctx(session_db_path=str(database)), f"cat {database}; ls {host_dir}")
    assert "SECRET-ROW" not in output
    assert output.endswith("lynkr.db\n")  # the directory is there, the file's content is not


def test_a_protected_directory_is_empty_inside(workspace_dir: Path) -> None:
    (workspace_dir / "private").mkdir()
    (workspace_dir / "private" / "token").write_text("SECRET-TOKEN")
    workspace = Workspace(workspace_dir, protected=[workspace_dir / "private"])
    ctx = ToolContext(config=Config(workspace_root=str(workspace_dir)), workspace=workspace)
    output = shell(ctx, "ls -A private; cat private/token; echo x > private/new; echo ran")
    assert output == "exit code: 0\n\ncat: private/token: No such file or directory\nran\n"
    assert sorted(p.name for p in (workspace_dir / "private").iterdir()) == ["token"]


def test_no_network_by_default(ctx: ToolContext, listener: int) -> None:
    output = shell(ctx, f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo connected")
    assert output.startswith("exit code: 1\n")  # the sandbox has its own loopback, where nothing listens
    assert "connected" not in output


def test_network_when_the_operator_allows_it(make_ctx: Any, listener: int) -> None:
    output = shell(make_ctx(sandbox_allow_networking=True), f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo connected")
    assert output == "exit code: 0\n\nconnected\n"


def test_without_a_sandbox_the_tool_refuses(make_ctx: Any, workspace_dir: Path) -> None:
    with pytest.raises(ToolError, match=r"no sandbox .*MCP_SANDBOX_ENABLED=false"):
        shell(make_ctx(sandbox_enabled=False), "touch ran")
    assert not (workspace_dir / "ran").exists()


def test_without_a_sandbox_it_runs_when_unsandboxed_runs_are_allowed(
        make_ctx: Any, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_API_KEY", SECRET)
    ctx = make_ctx(sandbox_enabled=False, shell_allow_unsandboxed=True, databricks_api_key=SECRET)
    output = shell(ctx, "touch ran; echo $HOME; env")
    assert output.startswith(f"exit code: 0\n\n{workspace_dir}\n")
    assert (workspace_dir / "ran").exists()
    assert SECRET not in output


@pytest.mark.parametrize("sandboxed", [True, False])
def test_a_timeout_kills_the_command_and_its_children(make_ctx: Any, workspace_dir: Path, sandboxed: bool) -> None:
    ctx = make_ctx(sandbox_enabled=sandboxed, shell_allow_unsandboxed=not sandboxed)
    started = time.monotonic()
    output = shell(ctx, "(sleep 1.5; touch late) & sleep 30", timeout_ms=300)
    assert time.monotonic() - started < 5
    assert output.startswith("timed out after 300 ms: the command and everything it started were killed")
    time.sleep(2)
    assert not (workspace_dir / "late").exists()


def test_the_timeout_is_capped_by_the_operator(make_ctx: Any) -> None:
    output = shell(make_ctx(sandbox_timeout_ms=300), "sleep 30", timeout_ms=60_000)
    assert output.startswith("timed out after 300 ms")


def test_output_beyond_the_cap_is_cut_with_a_note(make_ctx: Any) -> None:
    command = "printf 'start'; head -c 5000 /dev/zero | tr '\\0' a; printf end"
    output = shell(make_ctx(shell_max_output_bytes=100), command)
    assert output == ("exit code: 0\noutput truncated: the first and last 50 bytes are shown\n\n"
                      + "start" + "a" * 45 + "\n… [4908 bytes of output left out] …\n" + "a" * 47 + "end")


def test_destructive_commands_are_refused_before_they_run(make_ctx: Any, workspace_dir: Path) -> None:
    (workspace_dir / "keep").write_text("x")
    with pytest.raises(ToolError, match="refused: recursive rm"):
        shell(make_ctx(), "rm -rf *")
    assert (workspace_dir / "keep").exists()
    assert shell(make_ctx(policy_safe_commands_enabled=False, policy_git_allow_push=True),
                 "git push --force").startswith("exit code: 128")


def test_cwd_is_a_directory_inside_the_workspace(ctx: ToolContext, workspace_dir: Path) -> None:
    (workspace_dir / "sub").mkdir()
    (workspace_dir / "file.txt").write_text("x")
    assert shell(ctx, "pwd", cwd="sub") == f"exit code: 0\n\n{workspace_dir / 'sub'}\n"
    with pytest.raises(ToolError, match="outside the workspace"):
        shell(ctx, "pwd", cwd="../outside")
    with pytest.raises(ToolError, match="not a directory"):
        shell(ctx, "pwd", cwd="file.txt")


def test_empty_or_missing_commands_are_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="missing required argument 'command'"):
        SHELL_TOOLS[0].run(ctx, {})
    with pytest.raises(ToolError, match="must not be empty"):
        shell(ctx, "  ")


def test_run_in_workspace_passes_argv_without_a_shell(ctx: ToolContext, workspace_dir: Path) -> None:
    result = run_in_workspace(ctx, ["touch", "; touch injected"], timeout_s=10)
    assert result.exit_code == 0
    assert sorted(p.name for p in workspace_dir.iterdir()) == ["; touch injected"]


def test_run_in_workspace_modes(make_ctx: Any, workspace_dir: Path) -> None:
    off = make_ctx(sandbox_enabled=False)
    with pytest.raises(ToolError, match="no sandbox"):
        run_in_workspace(off, ["true"], timeout_s=10, sandbox="always")
    assert run_in_workspace(off, ["true"], timeout_s=10, sandbox="auto").exit_code == 0
    never = run_in_workspace(make_ctx(), ["bash", "-c", "echo $HOME"], timeout_s=10, sandbox="never")
    assert never.output == f"{workspace_dir}\n"


# -- a real git repository in the workspace ---------------------------------------------------------


def git(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(workspace), *args], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(workspace.parent), "GIT_AUTHOR_NAME": "t",
                               "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.com"})


def test_a_sandboxed_command_can_commit_but_not_plant_hooks_or_git_config(make_ctx: Any,
                                                                           workspace_dir: Path) -> None:
    git(workspace_dir, "init", "-q")
    (workspace_dir / "a.txt").write_text("one\n")
    config_before = (workspace_dir / ".git" / "config").read_text()
    output = shell(make_ctx(), "git add a.txt && git -c user.name=m -c user.email=m@example.com commit -qm first"
                               " && echo committed;"
                               " echo 'touch /tmp/pwned' > .git/hooks/post-commit; git config core.fsmonitor 'touch x'")
    assert "committed" in output
    assert git(workspace_dir, "log", "--format=%s").stdout == "first\n"
    assert not (workspace_dir / ".git" / "hooks" / "post-commit").exists()
    assert (workspace_dir / ".git" / "config").read_text() == config_before


def test_git_push_follows_the_push_policy_even_with_the_safety_filter_off(make_ctx: Any) -> None:
    with pytest.raises(ToolError, match=r"refused: pushing is disabled by the gateway's policy "
                                        r"\(POLICY_GIT_ALLOW_PUSH=false\)"):
        shell(make_ctx(policy_safe_commands_enabled=False), "git add -A && git push origin main")
