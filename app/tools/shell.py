"""The ``shell`` tool, and :func:`run_in_workspace`, which other tools use to run an argv.

A model-written command runs as ``bash -c <command>`` inside the sandbox (see
:mod:`app.tools.sandbox`), never on the host: with no sandbox available the tool refuses,
unless the operator set ``SHELL_ALLOW_UNSANDBOXED=true``. Before that, the advisory filter in
:mod:`app.tools.safe_commands` turns away obviously destructive commands. The child gets the
clean environment of :func:`app.tools.process.child_env`, with ``HOME`` in a private ``/tmp``
inside the sandbox (the workspace root when unsandboxed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from app.tools.base import Tool, ToolContext, ToolError, int_arg, str_arg
from app.tools.git.policy import PUSH_REFUSED
from app.tools.process import ProcessResult, child_env, run_process
from app.tools.safe_commands import check_command, pushes_to_git
from app.tools.sandbox import SANDBOX_HOME, detect_sandbox, unavailable_reason

SandboxMode = Literal["auto", "always", "never"]


def run_in_workspace(ctx: ToolContext, argv: Sequence[str], *, timeout_s: float, sandbox: SandboxMode = "auto",
                     cwd: Path | None = None, max_output_bytes: int | None = None) -> ProcessResult:
    """Run ``argv`` in the workspace (or ``cwd`` inside it): sandboxed always, when available, or never.

    Raises :class:`ToolError` when ``sandbox`` is ``"always"`` and no sandbox is available.
    """
    config, workspace = ctx.config, ctx.workspace
    box = None if sandbox == "never" else detect_sandbox(config)
    if box is None and sandbox == "always":
        raise ToolError(f"no sandbox to run this in: {unavailable_reason(config)}")
    cwd = cwd or workspace.root
    cap = config.shell_max_output_bytes if max_output_bytes is None else max_output_bytes
    if box is None:
        env = child_env(config, {"HOME": str(workspace.root)})
        return run_process(argv, cwd=cwd, env=env, timeout_s=timeout_s, max_output_bytes=cap)
    env = child_env(config, {"HOME": SANDBOX_HOME})
    wrapped = box.wrap(argv, root=workspace.root, cwd=cwd, protected=workspace.protected,
                       allow_network=config.sandbox_allow_networking, env_names=sorted(env), timeout_s=timeout_s)
    return run_process(wrapped, cwd=workspace.root, env=env, timeout_s=timeout_s, max_output_bytes=cap)


def run_shell(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """Run the model's command with ``bash -c`` in the sandbox and report how it ended."""
    command = str_arg(args, "command", "cmd", required=True) or ""
    if not command.strip():
        raise ToolError("argument 'command' must not be empty")
    if not ctx.config.policy_git_allow_push and pushes_to_git(command):
        raise ToolError(f"refused: {PUSH_REFUSED}.")
    if ctx.config.policy_safe_commands_enabled:
        reason = check_command(command)
        if reason:
            raise ToolError(f"refused: {reason}. This command looks destructive and was not run.")
    limit_ms = ctx.config.sandbox_timeout_ms
    timeout_ms = min(int_arg(args, "timeout_ms", "timeout", default=limit_ms, minimum=1) or limit_ms, limit_ms)
    mode: SandboxMode = "auto" if ctx.config.shell_allow_unsandboxed else "always"
    result = run_in_workspace(ctx, ["bash", "-c", command], timeout_s=timeout_ms / 1000, sandbox=mode,
                              cwd=_cwd(ctx, args))
    return describe(result, timeout_ms=timeout_ms, max_output_bytes=ctx.config.shell_max_output_bytes)


def describe(result: ProcessResult, *, timeout_ms: int, max_output_bytes: int) -> str:
    """The tool result text: how the command ended, any notes, then its output."""
    if result.timed_out:
        lines = [f"timed out after {timeout_ms} ms: the command and everything it started were killed"]
    else:
        lines = [f"exit code: {result.exit_code}"]
    if result.truncated:
        lines.append(f"output truncated: the first and last {max_output_bytes // 2} bytes are shown")
    lines.append("")
    lines.append(result.output if result.output else "(no output)")
    return "\n".join(lines)


def _cwd(ctx: ToolContext, args: Mapping[str, Any]) -> Path | None:
    relative = str_arg(args, "cwd")
    if relative is None:
        return None
    path = ctx.workspace.resolve(relative)
    if not path.is_dir():
        raise ToolError(f"cwd '{relative}' is not a directory in the workspace")
    return path


SHELL_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="shell",
        description=("Run a bash command in a sandbox confined to the workspace: the rest of the filesystem is "
                     "read-only, /tmp is private and discarded, and there is no network unless the operator "
                     "allows it. Returns the exit code and the combined stdout and stderr."),
        input_schema={
            "type": "object",
            "properties": {
                "command": {"type": "string", "minLength": 1, "description": "The bash command to run."},
                "timeout_ms": {"type": "integer", "minimum": 1,
                               "description": "Milliseconds before the command is killed (capped by the operator)."},
                "cwd": {"type": "string", "description": "A directory in the workspace to run in (default: its root)."},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
        run=run_shell,
        duplicates=("Bash",),
    ),
)
