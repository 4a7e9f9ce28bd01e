"""``lynkr index [--workspace DIR]``: rebuild the code index from the command line.

On a terminal the rebuild draws a progress bar on one line of stderr; otherwise (a log, a CI
job) it prints a plain line every tenth of the way. Either way it ends with the rebuild's
counts and time on stdout.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from app.config import Config
from app.tools.base import ToolContext, ToolError
from app.tools.paths import Workspace

BAR_WIDTH = 30


class ProgressReport:
    """Shows how far a rebuild is: a redrawn bar on a terminal, a line per tenth elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown_tenth = -1
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` files have been looked at."""
        if self.tty:
            filled = BAR_WIDTH * done // total
            self.stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} files")
            self.drawn = True
        else:
            tenth = 10 * done // total
            if tenth == self.shown_tenth:
                return
            self.shown_tenth = tenth
            self.stream.write(f"indexing: {done}/{total} files\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line, if one was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def add_parser(sub: Any) -> None:
    """Declare ``lynkr index [--workspace DIR]`` on the CLI's subcommands."""
    parser = sub.add_parser("index", help="rebuild the code index of the workspace (and its CLAUDE.md summary)")
    parser.add_argument("--workspace", metavar="DIR", help="the directory to index (default: WORKSPACE_ROOT)")


def run(config: Config, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``lynkr index`` with parsed arguments."""
    return run_index(config, args.workspace, out, err)


def run_index(config: Config, directory: str | None, out: TextIO, err: TextIO) -> int:
    """Rebuild the index of ``directory`` (default ``WORKSPACE_ROOT``); 0 on success, 2 on bad input."""
    from app.storage.db import bind, close_all, make_database
    from app.storage.migrate import migrate
    from app.tools.index.tools import rebuild_workspace

    root = directory or config.workspace_root
    if not root:
        err.write("lynkr: no workspace: set WORKSPACE_ROOT or pass --workspace DIR\n")
        return 2
    if not os.path.isdir(root):
        err.write(f"lynkr: {root} is not a directory\n")
        return 2
    database = make_database(config)
    bind(database)
    migrate(database)
    workspace = Workspace(root, deny=config.policy_file_blocked_paths, protected=[config.session_db_path])
    report = ProgressReport(err)
    try:
        stats, note = rebuild_workspace(ToolContext(config, workspace), report.update)
    except ToolError as exc:
        report.finish()
        err.write(f"lynkr: {exc}\n")
        return 1
    finally:
        close_all()
    report.finish()
    for path, reason in stats.failed:
        err.write(f"failed: {path}: {reason}\n")
    out.write(f"{note}\n{stats.line()}\n")
    return 0
